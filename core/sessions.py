"""Requests that authenticate by a token bound to a login session, without loading it.

A viewing's progress report and a quiz attempt's submit carry a token the server issued to the
member's own login session. The token is only good while that session lives: logging out (or the
session expiring) ends it. These two helpers ask that question as cheaply as the session engine
allows: inside the query that fetches the token's row for the database-backed engines (db and
cached_db), with one lookup in the store for the others.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.db.models import Exists, OuterRef


def session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def with_live_session(rows, field: str, now):
    """``rows`` narrowed to those whose session (named by the column ``field``) is alive at
    ``now``, where the sessions live in the database; unchanged otherwise (ask
    ``session_alive_elsewhere`` of each row then)."""
    store = session_store()
    if issubclass(store, DatabaseSessionStore):
        sessions = store.get_model_class().objects.filter(
            session_key=OuterRef(field), expire_date__gt=now
        )
        rows = rows.filter(Exists(sessions))
    return rows


def session_alive_elsewhere(session_key: str) -> bool:
    """Whether ``session_key`` still exists, for engines ``with_live_session`` cannot ask in
    SQL (it has answered already for the others)."""
    store = session_store()
    return issubclass(store, DatabaseSessionStore) or store().exists(session_key)


def live_session_condition(column: str) -> str | None:
    """``with_live_session`` for hand-written SQL: a condition that the session named by the
    SQL expression ``column`` is alive at the datetime parameter it takes, where sessions live
    in the database; None otherwise (ask ``session_alive_elsewhere`` then)."""
    store = session_store()
    if not issubclass(store, DatabaseSessionStore):
        return None
    model = store.get_model_class()
    quote = connection.ops.quote_name
    key = quote(model._meta.get_field("session_key").column)
    expires = quote(model._meta.get_field("expire_date").column)
    return (
        f"EXISTS (SELECT 1 FROM {quote(model._meta.db_table)} s "
        f"WHERE s.{key} = {column} AND s.{expires} > %s)"
    )
