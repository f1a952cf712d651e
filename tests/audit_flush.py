"""Test harness only (a pytest plugin): let the test database be emptied between tests.

The audit log's triggers (core.audit.protect_audit_log) make the database refuse UPDATE and
DELETE on audit records, and must stay in place for every test. But the teardown of a
transactional test (pytest-django ``transaction=True``, ``live_server``) empties every table with
Django's flush: on PostgreSQL that is TRUNCATE, which fires no row trigger; on SQLite it is
``DELETE FROM``, which the trigger refuses. So for that flush alone, in this test process only,
the SQLite triggers are dropped and then re-created from the very SQL the database stored for
them. Nothing here exists in the product: it cannot unlock the audit log outside the tests.
"""

_original = {}


def _stored_triggers(connection) -> list[tuple[str, str]]:
    from core.audit import AUDIT_TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
            [AUDIT_TABLE],
        )
        return cursor.fetchall()


def execute_sql_flush(self, sql_list):
    from core.audit import AUDIT_TABLE

    _execute_sql_flush = _original["execute_sql_flush"]
    connection = self.connection
    if connection.vendor != "sqlite" or not any(AUDIT_TABLE in sql for sql in sql_list):
        return _execute_sql_flush(self, sql_list)
    triggers = _stored_triggers(connection)
    with connection.cursor() as cursor:
        for name, _sql in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
    try:
        return _execute_sql_flush(self, sql_list)
    finally:
        with connection.cursor() as cursor:
            for _name, sql in triggers:
                cursor.execute(sql)


def _operations():
    import django.db.models  # noqa: F401  (first: base.operations imports it, circularly)
    from django.db.backends.base.operations import BaseDatabaseOperations

    return BaseDatabaseOperations


def pytest_configure(config):
    operations = _operations()
    _original["execute_sql_flush"] = operations.execute_sql_flush
    operations.execute_sql_flush = execute_sql_flush


def pytest_unconfigure(config):
    if "execute_sql_flush" in _original:
        _operations().execute_sql_flush = _original.pop("execute_sql_flush")
