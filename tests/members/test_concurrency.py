"""Concurrent writers queue instead of failing with "database is locked"."""

import threading

import pytest
from django.db import connection, transaction

from members.models import Member

from .. import factories


@pytest.mark.django_db(transaction=True)
def test_concurrent_read_then_write_transactions_all_succeed(city):
    # Each transaction reads, then writes: with SQLite's default DEFERRED transactions the
    # upgrade from reader to writer fails at once ("database is locked"); IMMEDIATE queues.
    member_ids = [factories.member(city.branch_a, name=f"并发{i}").pk for i in range(4)]
    errors = []
    rounds = 20  # names stay within the 50-character column on PostgreSQL

    def worker(member_id):
        try:
            for _ in range(rounds):
                with transaction.atomic():
                    # A row lock on PostgreSQL; a no-op on SQLite, where IMMEDIATE does the job.
                    member = Member.objects.select_for_update().get(pk=member_id)
                    Member.objects.filter(pk=member_id).update(name=member.name + "+")
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(pk,)) for pk in member_ids * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for pk in member_ids:
        assert Member.objects.get(pk=pk).name.count("+") == 2 * rounds


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_viewing_lose_nothing(city):
    """Beacon and timer reports can race; every credited second must end up stored."""
    from datetime import timedelta

    from django.utils import timezone

    from courses import services
    from courses.models import LessonProgress

    from ..courses.builders import lesson, session_of

    page = lesson(duration=600)
    progress = services.progress_start(
        member=city.member_a, lesson=page, session_key=session_of(city.member_a)
    )
    LessonProgress.objects.filter(pk=progress.pk).update(
        viewing_started_at=timezone.now() - timedelta(hours=1)
    )
    errors = []

    def reporter(index):
        try:
            for step in range(5):
                start = index * 50 + step * 10
                services.progress_report(
                    progress_id=progress.pk,
                    viewing=progress.viewing,
                    segments=[[index * 50, start + 10]],
                    position=start + 10,
                )
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=reporter, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = LessonProgress.objects.get(pk=progress.pk)
    assert stored.segments == [[0.0, 400.0]]
    assert stored.watched_seconds == 400
