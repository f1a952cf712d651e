"""Audit records cannot be changed or deleted: the database refuses UPDATE and DELETE on them.

SQLite gets two BEFORE triggers, PostgreSQL one row trigger; both raise an IntegrityError. The
SQL lives in core.audit (protect_audit_log), which members.signals also runs after every
``migrate``: a later auditlog migration that rebuilds the table on SQLite drops its triggers.
"""

from django.db import migrations


def protect(apps, schema_editor):
    from core.audit import protect_audit_log

    protect_audit_log(schema_editor.connection)


def unprotect(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in ("lunxun_audit_no_update", "lunxun_audit_no_delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        elif connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER IF EXISTS lunxun_audit_immutable ON auditlog_logentry")
            cursor.execute("DROP FUNCTION IF EXISTS lunxun_audit_refuse()")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(protect, unprotect, elidable=False)]
