from django import template

from rounds.models import Notice

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notice_count(context) -> int:
    """How many of the signed-in user's notices are unread: ``{% unread_notice_count %}``.

    Use ``{% unread_notice_count as n %}`` to show a badge only when ``n`` is non-zero.
    """
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return 0
    cached = getattr(user, "_lunxun_unread_notices", None)
    if cached is None:
        cached = Notice.objects.filter(user=user, read_at__isnull=True).count()
        user._lunxun_unread_notices = cached
    return cached
