"""A pytest plugin for ``make mutation`` only: pyproject.toml's [tool.mutmut] loads it with -p.

mutmut runs pytest once per mutant, all on one test database kept between the runs
(``--reuse-db``) so that no run migrates again. A test on a transactional database flushes it
when it ends, and with it the rows the migrations wrote (Wagtail's root page and default site,
the trainers' page permissions): every later run would start without them and fail for that
reason alone. Those tests (the ones with threads, proving behaviour under concurrency) are left
out of mutation runs; ``make test`` runs them.
"""

from pytest_django.fixtures import validate_django_db

TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server", "django_db_reset_sequences"}


def _transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker is not None:
        transaction, reset_sequences, *_ = validate_django_db(marker)
        if transaction or reset_sequences:
            return True
    return bool(TRANSACTIONAL_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config, items):
    dropped = [item for item in items if _transactional(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not _transactional(item)]
