"""The query planner's statistics, refreshed after a bulk load.

SQLite plans with no statistics until ``ANALYZE`` has run, and nothing runs it by itself: it
then guesses every table's size and every index's selectivity alike. At city scale the guess
picks worse indexes (a year's study-hours count at 300,000 members reads the summary's rows
through the unique index on member and year instead of the index that also holds the total,
and takes half as long again). PostgreSQL's autovacuum analyses a table once enough of it has
changed, some time after a load; analysing at once plans the next page with the new data.

``planner_statistics_refresh`` runs where the product loads data in bulk: the demo and scale
seeds, an applied spreadsheet import, ``manage.py ledger_summary`` and ``coverage_counters``
rebuilds. On SQLite it samples (``PRAGMA analysis_limit``), which keeps it to a fraction of a
second at 300,000 members. Not inside migrations: a fresh database's empty tables would be
analysed as empty and planned as small once they have grown.
"""

from django.db import connections

# Rows SQLite reads per index when analysing (https://sqlite.org/lang_analyze.html).
SQLITE_ANALYSIS_LIMIT = 1000


def planner_statistics_refresh(using: str = "default") -> None:
    """Refresh the planner's statistics of every table of the database ``using``."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            cursor.execute("ANALYZE")
        elif connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
