"""A viewing's row, signed into the answer to each report: the next report brings it back, and
needs no read before its write.

A report credits what a member played against their row as it stands (its segments, its watch
clock, whether it is complete). Reading that row first costs a round trip to the database per
report, the hottest write in the product. Instead, the start of a viewing and every report
answer with the row as it now is, signed with the site's key (``issue``); the player sends it
back with its next report, and ``read`` gives back that row, or None when the token is not one
we signed for this progress row and viewing, or was signed for other columns.

A signed row is only a claim about the past. What makes it safe to write from is the one
conditional UPDATE that writes the credit (courses/progress_sql.credit_write with ``live_at``):
it applies only while the row's ``updated_at`` and viewing are still the ones signed (every
write to a progress row sets ``updated_at``), and it asks in the same statement what the read
would have asked: the member and their account active, the viewing's session alive. A stale
token (another tab reported since, the player sent an older answer's), an ended session or a
deactivated member make the UPDATE match nothing, and the report takes the ordinary path: read,
then write. The client cannot change what it sends back without the signature failing, and an
old token of its own no longer matches the row.

The token starts with the progress row's id in clear (``<id>:<payload>:<signature>``, all of it
signed, in characters a form field carries as they are), so a client holding several can tell
whose each answer is.
"""

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from uuid import UUID

from django.core import signing
from django.db import connection, models

from .models import LessonProgress

# Never in a token: the key of the session the viewing began in is the session cookie's value,
# which the browser keeps from the page's scripts (HttpOnly). A row read from a token leaves it
# unloaded; the write asks about the session in SQL (progress_sql.sessions_asked_in_sql).
UNSIGNED = {"viewing_session"}


@cache
def _columns():
    """(attname, how a JSON value becomes the field's value) for every column signed, in order.
    Only values this module signed are ever loaded, so each needs at most a type restored."""
    columns = []
    for field in LessonProgress._meta.concrete_fields:
        if field.attname in UNSIGNED:
            continue
        if isinstance(field, models.DateTimeField):
            load = datetime.fromisoformat
        elif isinstance(field, models.UUIDField):
            load = UUID
        elif isinstance(field, models.DecimalField):
            load = Decimal
        else:
            load = None
        columns.append((field.attname, load))
    return tuple(columns)


@cache
def _salt():
    # The column names are part of the salt: a token signed before a schema change no longer
    # verifies, rather than filling the wrong columns.
    return "courses.progress_state:" + ",".join(name for name, _load in _columns())


def _signer():
    return signing.Signer(salt=_salt())


def _dumped(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, Decimal):
        return str(value)
    return value


def issue(progress: LessonProgress) -> str:
    """The token of ``progress`` as it is now (as written to the database)."""
    values = [_dumped(getattr(progress, name)) for name, _load in _columns()]
    payload = signing.b64_encode(json.dumps(values, separators=(",", ":")).encode()).decode()
    return _signer().sign(f"{progress.pk}:{payload}")


def read(token: str, *, progress_id: int, viewing: UUID) -> LessonProgress | None:
    """The row signed into ``token`` if it is a token we issued for ``progress_id`` and
    ``viewing``; None otherwise, whatever the token holds."""
    if not token:
        return None
    try:
        signed = _signer().unsign(token)
        pk, payload = signed.split(":", 1)
        if int(pk) != int(progress_id):
            return None
        values = json.loads(signing.b64_decode(payload.encode()))
    except (signing.BadSignature, ValueError, TypeError):
        return None
    columns = _columns()
    if not isinstance(values, list) or len(values) != len(columns):
        return None
    row = [
        value if value is None or load is None else load(value)
        for (_name, load), value in zip(columns, values, strict=True)
    ]
    progress = LessonProgress.from_db(connection.alias, [name for name, _load in columns], row)
    # The id was checked above: issue() signs the row's own id in clear and in the payload.
    return progress if progress.viewing == viewing else None
