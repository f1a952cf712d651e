import time

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .audit import audit_event
from .backends import resolve_username
from .middleware import SESSION_STARTED_KEY
from .models import Member, Organization, RoleAssignment

auditlog.register(Member, exclude_fields=["updated_at"])
auditlog.register(Organization)
auditlog.register(RoleAssignment)


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED_KEY] = time.time()
    audit_event(event="login", obj=user, actor=user, request=request)


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Failures for accounts that do not exist are kept by django-axes (AccessFailureLog).
    User = get_user_model()
    user = User.objects.filter(username=resolve_username(credentials.get("username"))).first()
    if user is not None:
        audit_event(event="login_failed", obj=user, actor=None, request=request, result="failed")


@receiver(post_save, sender=RoleAssignment)
@receiver(post_delete, sender=RoleAssignment)
def sync_trainer_group(sender, instance, **kwargs):
    from .services import trainer_group_sync

    trainer_group_sync(instance.user)
