"""The audit log, on django-auditlog's LogEntry: explicit events and the rules every record keeps.

Model changes are logged by auditlog's registry (each domain app registers its models in its own
signals.py); ``audit_event`` records the events that are not a save of one model (imports,
exports, bulk actions, logins, decisions).
Every record carries:

- when: ``timestamp``; who: ``actor`` (None for the system: tasks, commands);
- what: ``additional_data["event"]`` (model changes: ``<model>_created`` / ``_updated`` /
  ``_deleted``, set in core/signals.py) and ``action``;
- on which object: ``content_type``, ``object_pk``, ``object_repr``;
- the result: ``additional_data["result"]``, one of ``RESULTS`` (a refused or failed attempt
  says why in ``additional_data["error"]``);
- the source address: ``remote_addr`` (None outside a request), from ``client_ip``.

A bulk operation writes one record, on the object it was scoped to (the round, the sitting, the
import, the acting user for a hand-picked selection), listing the affected ids
(``member_ids``, ``certificate_ids``, ``organization_ids``; a roll call lists its changes).

Records are never changed or deleted: the database refuses it (``protect_audit_log``, installed
by the migration members.0002_audit_immutable and re-checked after every ``migrate``).
"""

import ipaddress

from auditlog.models import LogEntry
from django.conf import settings

OK, REFUSED, FAILED, SCHEDULED = "ok", "refused", "failed", "scheduled"
RESULTS = (OK, REFUSED, FAILED, SCHEDULED)


def trusted_ip_header() -> str:
    """The request.META key a trusted reverse proxy puts the client's address in, or "".

    The same one django-ratelimit uses (``RATELIMIT_IP_META_KEY``, set from
    ``LUNXUN_RATELIMIT_IP_HEADER``), so the address a limit counts is the one the log records.
    """
    header = getattr(settings, "LUNXUN_RATELIMIT_IP_HEADER", "") or ""
    if not header:
        meta_key = getattr(settings, "RATELIMIT_IP_META_KEY", None)
        if isinstance(meta_key, str) and "." not in meta_key:
            header = meta_key
    header = header.strip()
    if header and header != "REMOTE_ADDR" and not header.startswith("HTTP_"):
        header = "HTTP_" + header.upper().replace("-", "_")
    return header


def _ip(value) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The address a request came from.

    Without a configured trusted header this is REMOTE_ADDR, whatever the request's own headers
    claim (X-Forwarded-For is whatever a client wants it to be). Behind a proxy, the configured
    header; for a list (X-Forwarded-For) its last entry, the one the trusted proxy added.
    """
    if request is None:
        return None
    header = trusted_ip_header()
    if header:
        value = request.META.get(header, "")
        address = _ip(value.split(",")[-1]) if value else None
        if address:
            return address
    return _ip(request.META.get("REMOTE_ADDR"))


def audit_event(*, event: str, obj, actor=None, request=None, result: str = OK, **details):
    """Record ``event`` about ``obj`` (any saved model instance) in the audit log.

    ``result`` is one of ``RESULTS``; a refused or failed attempt passes ``error=`` saying why.
    """
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


# --- Immutability --------------------------------------------------------------------------------

AUDIT_TABLE = LogEntry._meta.db_table
TRIGGER_PREFIX = "lunxun_audit_"
_MESSAGE = "audit log records cannot be changed or deleted"

SQLITE_TRIGGERS = {
    f"{TRIGGER_PREFIX}no_update": (
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}no_update BEFORE UPDATE ON {AUDIT_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    ),
    f"{TRIGGER_PREFIX}no_delete": (
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}no_delete BEFORE DELETE ON {AUDIT_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    ),
}
POSTGRES_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {TRIGGER_PREFIX}refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{_MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$"
)
POSTGRES_TRIGGER = f"{TRIGGER_PREFIX}immutable"


def audit_log_triggers(connection) -> set[str]:
    """The names of our triggers that exist on the audit table."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AUDIT_TABLE],
            )
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [AUDIT_TABLE],
            )
        else:
            return set()
        return {name for (name,) in cursor.fetchall() if name.startswith(TRIGGER_PREFIX)}


def protect_audit_log(connection) -> bool:
    """Make the database refuse UPDATE and DELETE on audit records (idempotent).

    SQLite: two BEFORE triggers that abort. PostgreSQL: one row trigger that raises
    restrict_violation; both surface as django.db.IntegrityError. Returns True when something
    had to be (re)created, e.g. after a table rebuild on SQLite dropped the triggers.
    """
    existing = audit_log_triggers(connection)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            missing = [sql for name, sql in SQLITE_TRIGGERS.items() if name not in existing]
            for sql in missing:
                cursor.execute(sql)
            return bool(missing)
        if connection.vendor == "postgresql":
            if POSTGRES_TRIGGER in existing:
                return False
            cursor.execute(POSTGRES_FUNCTION)
            cursor.execute(
                f"CREATE TRIGGER {POSTGRES_TRIGGER} BEFORE UPDATE OR DELETE ON {AUDIT_TABLE} "
                f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER_PREFIX}refuse()"
            )
            return True
    return False
