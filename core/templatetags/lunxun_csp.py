"""``{% csp_nonce_attr %}``: ` nonce="…"` for an inline script, where `request` is not at hand.

Form widgets are rendered without the request (Django's form renderer); the CSP middleware
keeps the request being answered in a context variable, and this reads its nonce from there.
"""

from django import template
from django.utils.html import format_html

from core.csp import current_nonce

register = template.Library()


@register.simple_tag
def csp_nonce_attr():
    nonce = current_nonce()
    return format_html(' nonce="{}"', nonce) if nonce else ""
