import time

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from core.audit import audit_event, protect_audit_log
from core.middleware import SESSION_STARTED_KEY
from core.signals import backup_created

from .backends import resolve_username
from .models import Member, Organization, Posting, RoleAssignment
from .services import trainer_group_sync

auditlog.register(Member, exclude_fields=["updated_at"])
auditlog.register(Organization)
auditlog.register(RoleAssignment)
auditlog.register(Posting)
# Accounts: the powers Django and Wagtail know (superuser, groups, permissions) and whether the
# account may log in. Not the password hash, not last_login.
auditlog.register(
    get_user_model(),
    include_fields=["username", "is_active", "is_staff", "is_superuser"],
    m2m_fields={"groups", "user_permissions"},
)
# Groups: what being in one allows (the trainer group is kept by members.services).
auditlog.register(Group, include_fields=["name"], m2m_fields={"permissions"})


@receiver(post_migrate)
def keep_audit_log_protected(sender, app_config=None, using="default", **kwargs):
    """Re-create the audit log's triggers if a migration dropped them (on SQLite a table rebuild
    does), once the migration that installs them has been applied."""
    if app_config is None or app_config.label != "members":
        return
    connection = connections[using]
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return
    if ("members", "0002_audit_immutable") in recorder.applied_migrations():
        protect_audit_log(connection)


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
    trainer_group_sync(instance.user)


@receiver(backup_created)
def record_backup(sender, result, **kwargs):
    """A copy of every member's data left the database: that is on record, on the root of the
    organisation tree (nothing to record it on before there is one)."""
    root = Organization.get_first_root_node()
    if root is not None:
        audit_event(
            event="backup_created",
            obj=root,
            path=str(result.path),
            vendor=result.vendor,
            counts=result.counts,
            media_files=result.media_files,
        )
