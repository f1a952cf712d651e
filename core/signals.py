"""Signals of core: what every audit record carries, and the hooks core offers the domain apps.

core imports no domain app; where something it does concerns their data, it sends a signal
and the domain app that owns the data answers it (``backup_created``: members.signals records
the backup in the audit log).
"""

from auditlog.models import LogEntry
from django.db.models.signals import pre_save
from django.dispatch import Signal, receiver

from .audit import OK

# Sent by the ``backup`` command once an archive is complete; ``result`` is the
# core.backup.BackupResult.
backup_created = Signal()

ACTION_NAMES = {
    LogEntry.Action.CREATE: "created",
    LogEntry.Action.UPDATE: "updated",
    LogEntry.Action.DELETE: "deleted",
    LogEntry.Action.ACCESS: "accessed",
}


@receiver(pre_save, sender=LogEntry)
def audit_record_fields(sender, instance, **kwargs):
    """A model-change record gets the event and result an explicit event has: it is written in
    the transaction of the change it records, so it exists only if the change was made."""
    if instance._state.adding and not instance.additional_data:
        action = ACTION_NAMES.get(instance.action, str(instance.action))
        instance.additional_data = {
            "event": f"{instance.content_type.model}_{action}",
            "result": OK,
        }
