import re

from django.conf import settings
from django.urls import include, path, re_path
from django.views.decorators.cache import never_cache
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.admin.auth import require_admin_access
from wagtail.documents import urls as wagtaildocs_urls

from certificates.media import serve_public_media
from core.display import display_mode
from courses.live import serve_live_hls
from members.admin_views import SiteHistoryView

urlpatterns = [
    # Wagtail's site history, at its own address, for those whose scope is the whole tree.
    path(
        "admin/reports/site-history/",
        never_cache(require_admin_access(SiteHistoryView.as_view())),
    ),
    path(
        "admin/reports/site-history/results/",
        never_cache(require_admin_access(SiteHistoryView.as_view(results_only=True))),
    ),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("display/", display_mode, name="display_mode"),
    path("", include("members.urls")),
    path("", include("courses.urls")),
    path("", include("quizzes.urls")),
    path("", include("rounds.urls")),
    path("", include("certificates.urls")),
]

if settings.LUNXUN_SERVE_MEDIA:
    # The embedded default serves the public part of MEDIA_ROOT itself (HLS, posters, image
    # renditions); the scale profile serves it from object storage behind a CDN and turns this
    # off. Private files (video sources, certificate PDFs) are never served from here, and a
    # seal's or a signature's renditions only to trainers (certificates.media).
    media = re.escape(settings.MEDIA_URL.lstrip("/"))
    public = "|".join(re.escape(prefix) for prefix in settings.LUNXUN_PUBLIC_MEDIA_PREFIXES)
    urlpatterns += [
        re_path(
            rf"^{media}(?P<path>(?:{public})(?!.*\.\.).*)$",
            serve_public_media,
        )
    ]

    # The live ladder, from the live server's folder (courses.live); behind nginx, nginx
    # proxies /live/ to the live server instead and this is off.
    live = re.escape(settings.LUNXUN_LIVE_HLS_URL.lstrip("/"))
    urlpatterns += [
        re_path(
            rf"^{live}(?P<path>lecture-[0-9]+/(?:[a-z0-9]+/)?[a-z0-9_]+\.(?:m3u8|ts))$",
            serve_live_hls,
        )
    ]

urlpatterns += [path("", include(wagtail_urls))]
