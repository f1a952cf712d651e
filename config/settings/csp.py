"""Content-Security-Policy for every response (django-csp 4, core.csp.CSPMiddleware).

Scripts and styles come only from this site; an inline script must carry the request's nonce
(``nonce="{{ request.csp_nonce }}"``); no inline event handlers, no style attributes, no
plugins. Files come from the two stores (STORAGES): this site in the embedded default; in the
scale profile the public video store is object storage or a CDN and the private store object
storage with signed URLs, so their origins are added where pages load from them.
"""

import os
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE


def _store_origins():
    """The origins (video store, private store) that browsers fetch from; none by default."""
    bucket = os.environ.get("LUNXUN_S3_BUCKET")
    if not bucket:
        return [], []
    region = os.environ.get("LUNXUN_S3_REGION")
    endpoint = urlsplit(
        os.environ.get("LUNXUN_S3_ENDPOINT_URL")
        or (f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com")
    )
    host = endpoint.netloc
    if os.environ.get("LUNXUN_S3_ADDRESSING_STYLE", "path") == "virtual":
        host = f"{bucket}.{host}"
    s3 = f"{endpoint.scheme}://{host}"
    if os.environ.get("LUNXUN_VIDEO_CDN_DOMAIN"):
        protocol = os.environ.get("LUNXUN_VIDEO_CDN_PROTOCOL", "https:")
        return [f"{protocol}//{os.environ['LUNXUN_VIDEO_CDN_DOMAIN']}"], [s3]
    return [s3], [s3]


_video_origins, _private_origins = _store_origins()

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # Posters come from the video store; images (course covers, pictures in lessons) from
        # the private store through signed URLs.
        "img-src": list(dict.fromkeys([SELF, *_video_origins, *_private_origins])),
        # blob: is the MediaSource that hls.js attaches to the <video> element.
        "media-src": [SELF, "blob:", *_video_origins],
        # hls.js fetches the playlists and segments.
        "connect-src": [SELF, *_video_origins],
        # hls.js transmuxes in a worker it starts from a blob: URL of its own code.
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        # Wagtail's preview panel shows our pages in a frame of the admin.
        "frame-ancestors": [SELF],
        "base-uri": [NONE],
        "form-action": [SELF],
    }
}

# The Wagtail admin (paths under this prefix) keeps the policy above, scripts included: the
# inline scripts that Wagtail's widgets write get the nonce where they are made (core.csp,
# core/templates/wagtailadmin/widgets/). core.csp.CSPMiddleware adds these allowances:
LUNXUN_CSP_ADMIN_PREFIX = "/admin/"
LUNXUN_CSP_ADMIN_UPDATE = {
    # <style> elements: the rich text editor (Draftail, in Wagtail's vendor.js) renders them
    # for its placeholders and list numbering. A nonce in style-src switches 'unsafe-inline'
    # off, so this goes in style-src-elem, which browsers use for elements; style attributes
    # stay forbidden. Injected CSS could send data only to this site (img-src, font-src),
    # and a browser without style-src-elem only loses those cosmetics.
    "style-src-elem": [SELF, UNSAFE_INLINE],
    # The inline handler "return;" and nothing else: the focal point editor (Jcrop) tests for
    # touch support by setting ontouchstart="return;" on a detached element. Refusing it
    # breaks nothing but reports a violation on every image page; the hash allows exactly
    # that do-nothing handler.
    "script-src-attr": [UNSAFE_HASHES, "'sha256-i+qr4lq34KgNHiW62lWi9aInEBwiEOrfCzaNPCvkqD8='"],
    # data: the admin stylesheet's jQuery UI menu bullet; blob: previews of images chosen for
    # upload (load-image).
    "img-src": ["data:", "blob:"],
}

# Nothing in the admin may come from elsewhere either: no Gravatar pictures (img-src, and
# staff e-mail hashes sent abroad) and no release check from the dashboard (connect-src).
WAGTAIL_GRAVATAR_PROVIDER_URL = None
WAGTAIL_ENABLE_UPDATE_CHECK = False
