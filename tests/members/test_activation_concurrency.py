"""The limit of wrong activation codes holds under concurrency (issue 11, finding 7).

Fifteen wrong codes sent at once used to leave one failure counted (each request read the count,
added one and wrote it back) and the right code still worked. Each try here runs in its own
thread with its own database connection, on SQLite and PostgreSQL alike; a barrier holds every
try between reading the codes and counting its failure, the interleaving that lost the counts.
"""

import threading

import pytest
from django.db import connection

from members import services
from members.models import ActivationCode, Member

from .. import factories

TRIES = 15
PASSWORD = "Xin-ren-2026"


def _all_at_once(count, target):
    errors = []

    def run(index):
        try:
            target(index)
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture
def held_between_read_and_count(monkeypatch):
    """Every try in a worker thread has read the member's codes before any counts a failure."""
    barrier = threading.Barrier(TRIES)
    matches = ActivationCode.matches

    def held(self, code):
        if threading.current_thread() is not threading.main_thread():
            barrier.wait(timeout=60)
        return matches(self, code)

    monkeypatch.setattr(ActivationCode, "matches", held)
    return barrier


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_codes_all_count_and_burn_the_code(
    city, settings, held_between_read_and_count
):
    member = factories.member(city.branch_a, name="新人", password=None)
    [(_m, code)] = services.activation_codes_issue(members=[member])

    def wrong(_index):
        with pytest.raises(services.ActivationError):
            services.member_activate(phone=member.phone, code="WRONGCODE1", password=PASSWORD)

    assert _all_at_once(TRIES, wrong) == []
    stored = ActivationCode.objects.get(member=member)
    limit = settings.LUNXUN_ACTIVATION_MAX_FAILURES
    assert stored.failures == limit  # every try counted until the code was burnt
    assert stored.revoked
    with pytest.raises(services.ActivationError):
        services.member_activate(phone=member.phone, code=code, password=PASSWORD)
    member.refresh_from_db()
    assert member.activated_at is None
    assert not member.user.has_usable_password()


@pytest.mark.django_db(transaction=True)
def test_parallel_tries_of_one_right_code_activate_once(city):
    """Two people with the same slip (or a double click on a slow link): one password wins."""
    member = factories.member(city.branch_a, name="新人", password=None)
    [(_m, code)] = services.activation_codes_issue(members=[member])
    won = []

    def right(index):
        try:
            services.member_activate(
                phone=member.phone, code=code, password=f"Xin-ren-2026-{index}"
            )
        except services.ActivationError:
            return
        won.append(index)

    assert _all_at_once(6, right) == []
    assert len(won) == 1
    member = Member.objects.select_related("user").get(pk=member.pk)
    assert member.user.check_password(f"Xin-ren-2026-{won[0]}")
    assert ActivationCode.objects.get(member=member).used_at is not None
