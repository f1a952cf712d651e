"""The Django admin's view of the audit log is read-only: nothing to add, change or delete.

auditlog's own LogEntryAdmin already refuses adding and changing, but lets a record be deleted
as a cascade of deleting something else; the database refuses that anyway (core.audit), so
the admin offers none of it. (The Django admin is not mounted in config/urls.py; this keeps it
so should it ever be.)
"""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin


class ReadOnlyLogEntryAdmin(LogEntryAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)
admin.site.register(LogEntry, ReadOnlyLogEntryAdmin)
