"""The Content-Security-Policy middleware: django-csp's, with what the Wagtail admin needs.

The policy is in config/settings/csp.py: scripts only from this site or carrying the request's
nonce, no inline event handlers or style attributes, no plugins. Our templates live with that.

Wagtail 8 does not quite: some of its widgets write an inline ``<script>`` after their HTML
and it knows nothing of nonces. Rather than allowing 'unsafe-inline' scripts in the admin, the
nonce is given to those scripts where they are made, never by rewriting a response, so an
injected ``<script>`` stays blocked in the admin too:

* the middleware keeps the request being answered in a context variable (`current_nonce`);
* choosers (page, image, document, snippet, media) and inline panels build their script in
  Python: their render methods are wrapped (`nonce_trailing_script`);
* the date and time pickers use templates, rendered by the form renderer without the request:
  core/templates/wagtailadmin/widgets/ overrides them with ``{% csp_nonce_attr %}``
  (core/templatetags/lunxun_csp.py);
* wagtailmedia's upload page had an inline script: templates/wagtailmedia/media/add.html
  loads it from static/js/admin-media-title.js instead.

Beyond that the admin gets the few allowances of LUNXUN_CSP_ADMIN_UPDATE (see the settings).
tests/test_csp.py and tests/e2e/test_csp_browser.py notice when a Wagtail upgrade adds another
inline script.
"""

import functools
from contextvars import ContextVar

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings
from django.utils.safestring import mark_safe

_current_request = ContextVar("lunxun_csp_request", default=None)


def current_nonce():
    """The nonce of the request being answered, or None outside a request."""
    request = _current_request.get()
    if request is None or not hasattr(request, "csp_nonce"):
        return None
    return str(request.csp_nonce)


def nonce_trailing_script(html):
    """Give the bare ``<script>`` that ends `html` (as Wagtail's widgets write it) the nonce.

    Anything else is returned unchanged: no trailing script, a script with attributes, or
    more than one script after the last opening tag.
    """
    nonce = current_nonce()
    if nonce is None:
        return html
    start = html.rfind("<script>")
    if start < 0:
        return html
    tail = html[start + len("<script>") :]
    if not tail.rstrip().endswith("</script>") or tail.count("</script") != 1:
        return html
    # Safe: Wagtail's own markup, and a nonce is base64 (no quote, no angle bracket).
    return mark_safe(f'{html[:start]}<script nonce="{nonce}">{tail}')


def _with_nonce(render):
    if getattr(render, "_lunxun_csp", False):
        return render

    @functools.wraps(render)
    def wrapper(*args, **kwargs):
        return nonce_trailing_script(render(*args, **kwargs))

    wrapper._lunxun_csp = True
    return wrapper


def _teach_wagtail_the_nonce():
    """Wrap the Wagtail renderers that end their output with an inline script (Wagtail 8.0)."""
    from wagtail.admin.panels import InlinePanel
    from wagtail.admin.widgets.chooser import BaseChooser

    # Page, image, document, snippet, task and (wagtailmedia) media choosers.
    BaseChooser.render = _with_nonce(BaseChooser.render)
    # wagtailadmin/panels/inline_panel.html and multiple_chooser_panel.html: new InlinePanel(...).
    InlinePanel.BoundPanel.render_html = _with_nonce(InlinePanel.BoundPanel.render_html)


class CSPMiddleware(BaseCSPMiddleware):
    # Sync only: the request is held in a context variable for the whole response.
    async_capable = False

    def __init__(self, get_response):
        super().__init__(get_response)
        _teach_wagtail_the_nonce()

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return super().__call__(request)
        finally:
            _current_request.reset(token)

    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith("application/pdf"):
            # Chromium's PDF viewer is a plugin: object-src 'none' would leave it blank.
            # PDFs run no script of ours, so they carry no policy.
            response._csp_exempt = True
        return super().process_response(request, response)

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(settings.LUNXUN_CSP_ADMIN_PREFIX):
            # The admin's allowances (config/settings/csp.py says which and why) are added to
            # whatever a view itself asked for with @csp_update.
            update = {k: list(v) for k, v in (parts.update or {}).items()}
            for directive, sources in settings.LUNXUN_CSP_ADMIN_UPDATE.items():
                update[directive] = [*update.get(directive, []), *sources]
            parts.update = update
        return parts
