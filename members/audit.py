"""Explicit audit events (imports, exports, activation codes, logins) on django-auditlog.

Model changes are logged by auditlog's registry (see signals.py); these are the events that
are not a save of one model. Each record carries who, when, what, on which object, the
result, and the source address.
"""

from auditlog.models import LogEntry


def client_ip(request):
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_event(*, event: str, obj, actor=None, request=None, result: str = "ok", **details):
    """Record ``event`` about ``obj`` (any saved model instance) in the audit log."""
    request_user = getattr(request, "user", None)
    if actor is None and request_user is not None and request_user.is_authenticated:
        actor = request_user
    return LogEntry.objects.log_create(
        obj,
        force_log=True,
        action=LogEntry.Action.ACCESS,
        actor=actor,
        remote_addr=client_ip(request),
        changes={"event": [None, event]},
        additional_data={"event": event, "result": result, **details},
    )
