from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from .models import Member, normalize_phone


def resolve_username(login: str) -> str:
    """The username behind what a person typed: a mobile number or a username."""
    login = (login or "").strip()
    phone = normalize_phone(login)
    if phone:
        username = (
            Member.objects.filter(phone=phone).values_list("user__username", flat=True).first()
        )
        if username:
            return username
    return login


def axes_username(request, credentials):
    """django-axes counts failures per account, whichever way the account was named.

    An unknown login is counted under what was typed, so locking reveals nothing about
    whether an account exists.
    """
    login = (credentials or {}).get("username")
    if login is None and request is not None:
        login = request.POST.get("username")
    return resolve_username(login)


class PhoneOrUsernameBackend(ModelBackend):
    """Log in with the mobile number on the roster, or with a username."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(resolve_username(username))
        except User.DoesNotExist:
            # Hash anyway so timing does not tell which accounts exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
