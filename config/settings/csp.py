"""Content-Security-Policy for every response (django-csp 4).

Our pages load scripts and styles only from this site; inline scripts carry the per-request
nonce. Video comes from the public video store: this site in the embedded default, object
storage or a CDN in the scale profile, so that origin is added to media and fetch sources.
"""

import os
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


_video_origins = []
if os.environ.get("LUNXUN_VIDEO_CDN_DOMAIN"):
    _scheme = os.environ.get("LUNXUN_VIDEO_CDN_PROTOCOL", "https:")
    _video_origins.append(f"{_scheme}//{os.environ['LUNXUN_VIDEO_CDN_DOMAIN']}")
elif os.environ.get("LUNXUN_S3_BUCKET") and os.environ.get("LUNXUN_S3_ENDPOINT_URL"):
    _video_origins.append(_origin(os.environ["LUNXUN_S3_ENDPOINT_URL"]))

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "blob:", *_video_origins],
        "media-src": [SELF, "blob:", *_video_origins],
        "connect-src": [SELF, *_video_origins],
        "worker-src": [SELF, "blob:"],
        "font-src": [SELF, "data:"],
        "object-src": [NONE],
        "frame-ancestors": [SELF],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}
# The Wagtail admin (members.csp.CSPMiddleware) keeps the same sources but allows inline
# style attributes, which its widgets set from script.
LUNXUN_CSP_ADMIN_PREFIX = "/admin/"
