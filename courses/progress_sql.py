"""A progress report's statements, written once: the read that finds the viewing's row if it
may still earn, and the conditional write of the credit (which, for a report that carried its
row's signed state, asks in the same statement what the read would have).

The ORM built both for every report, and building them cost far more than running them (the
profile in bench/out/progress_profile-<db>.txt: filter building and SQL compilation were over
half of a report, the statements themselves a few per cent). This is the SQL the ORM wrote,
prepared once per database and session engine; values go in and come out through the model
fields' own conversions, so rows read and written here are the rows the ORM reads and writes.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper

from core.sessions import live_session_condition
from members.models import Member

from .models import LessonProgress

_prepared = {}


class _Statements:
    def __init__(self):
        quote = connection.ops.quote_name
        self.fields = LessonProgress._meta.concrete_fields
        self.names = [field.attname for field in self.fields]
        self.by_name = {field.attname: field for field in self.fields}
        # The conversions the ORM applies to each column it reads (SQLite's text datetimes,
        # JSON, decimals), in the order of the SELECT list.
        self.converters = [
            (
                index,
                connection.ops.get_db_converters(field.cached_col)
                + field.get_db_converters(connection),
                field.cached_col,
            )
            for index, field in enumerate(self.fields)
        ]
        self.converters = [entry for entry in self.converters if entry[1]]
        table = quote(LessonProgress._meta.db_table)
        self.table = table
        member_pk = quote(Member._meta.pk.column)
        member_id = quote(LessonProgress._meta.get_field("member").column)
        user = get_user_model()
        user_column = quote(Member._meta.get_field("user").column)
        members = quote(Member._meta.db_table)
        # The member (m) and their account (u), both active: what a viewing needs to earn.
        users_join = (
            f"INNER JOIN {quote(user._meta.db_table)} u "
            f"ON u.{quote(user._meta.pk.column)} = m.{user_column}"
        )
        active = f"m.{quote('is_active')} AND u.{quote('is_active')}"
        self.session_condition = live_session_condition(f"p.{quote('viewing_session')}")
        self.select = (
            f"SELECT {', '.join(f'p.{quote(field.column)}' for field in self.fields)} "
            f"FROM {table} p "
            f"INNER JOIN {members} m ON m.{member_pk} = p.{member_id} {users_join} "
            f"WHERE p.{quote('id')} = %s AND p.{quote('viewing')} = %s AND {active}"
            + (f" AND {self.session_condition}" if self.session_condition else "")
        )
        # What the SELECT checks, for an UPDATE that was not preceded by one (a report that
        # carried its row's state, courses/progress_state.py).
        live_session = live_session_condition(f"{table}.{quote('viewing_session')}")
        self.live_condition = (
            f" AND EXISTS (SELECT 1 FROM {members} m {users_join} "
            f"WHERE m.{member_pk} = {table}.{member_id} AND {active})"
            + (f" AND {live_session}" if live_session else "")
        )
        self.updates = {}

    def update_sql(self, names, live):
        sql = self.updates.get((names, live))
        if sql is None:
            quote = connection.ops.quote_name
            assignments = ", ".join(f"{quote(self.by_name[name].column)} = %s" for name in names)
            sql = self.updates[names, live] = (
                f"UPDATE {self.table} SET {assignments} "
                f"WHERE {self.table}.{quote('id')} = %s AND {self.table}.{quote('viewing')} = %s "
                f"AND {self.table}.{quote('updated_at')} = %s"
                + (self.live_condition if live else "")
            )
        return sql


def _statements() -> _Statements:
    key = (connection.alias, connection.vendor, settings.SESSION_ENGINE)
    statements = _prepared.get(key)
    if statements is None:
        statements = _prepared[key] = _Statements()
    return statements


def _cursor():
    """A cursor for these statements. On PostgreSQL one that binds its parameters on the server
    (psycopg's Cursor, where Django's default binds them in the client): psycopg then prepares
    a statement run several times on a connection, so a report's two statements are parsed and
    planned once per connection, not once per report. Wrapped as Django wraps its own cursors
    (the same error translation, and the statements logged where queries are)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    if connection.queries_logged:
        connection.validate_thread_sharing()
        return _ComposedDebugCursor(cursor, connection)
    return connection._prepare_cursor(cursor)


class _ComposedDebugCursor(CursorDebugWrapper):
    """Django's debug cursor names a statement by the text the client sent it, and a prepared
    statement is sent by name: log it with its values composed in instead."""

    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        if use_last_executed_query and not many:
            sql = self.db.ops.compose_sql(sql, params)
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


def _prep(statements, name, value):
    return statements.by_name[name].get_db_prep_save(value, connection)


def earning_row(*, progress_id: int, viewing, now) -> LessonProgress | None:
    """The progress row of ``viewing`` if the viewing may still earn at ``now``: the member
    and their account active and, where sessions live in the database, the session it was
    started in alive; None otherwise (courses.services._earning, as one prepared query)."""
    statements = _statements()
    params = [int(progress_id), _prep(statements, "viewing", viewing)]
    if statements.session_condition:
        params.append(connection.ops.adapt_datetimefield_value(now))
    with _cursor() as cursor:
        cursor.execute(statements.select, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, converters, column in statements.converters:
        value = values[index]
        for converter in converters:
            value = converter(value, column, connection)
        values[index] = value
    return LessonProgress.from_db(connection.alias, statements.names, values)


def sessions_asked_in_sql() -> bool:
    """Whether these statements ask themselves whether the viewing's session is alive (sessions
    live in the database); otherwise the caller asks ``session_alive_elsewhere``."""
    return _statements().session_condition is not None


def credit_write(*, progress: LessonProgress, fields, viewing, read_at, live_at=None) -> bool:
    """Write ``fields`` of ``progress`` if its row is still as it was read (the same viewing,
    the same ``updated_at``): one conditional UPDATE. False when something changed it since.

    ``live_at``: the row was not read by ``earning_row`` but known from the report's signed
    state (courses/progress_state.py), so the UPDATE also asks what that read would have: that
    the member and their account are active and, where sessions live in the database, that
    the viewing's session is alive at ``live_at``. False when any of it is not so."""
    statements = _statements()
    names = tuple(fields)
    live = live_at is not None
    params = [_prep(statements, name, getattr(progress, name)) for name in names]
    params += [
        progress.pk,
        _prep(statements, "viewing", viewing),
        _prep(statements, "updated_at", read_at),
    ]
    if live and statements.session_condition:
        params.append(connection.ops.adapt_datetimefield_value(live_at))
    with _cursor() as cursor:
        cursor.execute(statements.update_sql(names, live), params)
        return cursor.rowcount == 1
