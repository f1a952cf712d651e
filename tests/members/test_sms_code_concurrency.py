"""The limit of wrong SMS codes holds under concurrency, and a right code works once.

Each try runs in its own thread with its own database connection, on SQLite and PostgreSQL
alike; a barrier holds every try between reading the member's codes and counting its failure,
the interleaving in which a read-modify-write count would lose tries.
"""

import threading

import pytest
from django.db import connection

from members import sms_codes
from members.models import SmsCode

from .. import factories
from . import sms_outbox
from .sms_outbox import last_code

TRIES = 15
RIGHT_TRIES = 6


@pytest.fixture(autouse=True)
def _console_outbox(settings):
    settings.LUNXUN_SMS_BACKEND = sms_outbox.BACKEND
    sms_outbox.clear()


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


def _held(monkeypatch, parties):
    """Every try in a worker thread has read the member's codes and checked the code before
    any goes on to count a failure or claim the code."""
    barrier = threading.Barrier(parties)
    matches = SmsCode.matches

    def held(self, code):
        if threading.current_thread() is not threading.main_thread():
            barrier.wait(timeout=60)
        return matches(self, code)

    monkeypatch.setattr(SmsCode, "matches", held)
    return barrier


@pytest.fixture
def held_between_read_and_count(monkeypatch):
    return _held(monkeypatch, TRIES)


@pytest.fixture
def held_between_read_and_claim(monkeypatch):
    return _held(monkeypatch, RIGHT_TRIES)


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_codes_all_count_and_burn_the_code(
    city, settings, held_between_read_and_count
):
    member = factories.member(city.branch_a, name="老党员", phone="13700000009")
    sms_codes.sms_code_send(phone=member.phone, purpose="login")
    code = last_code("137****0009")
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    def guess(_index):
        with pytest.raises(sms_codes.SmsCodeError):
            sms_codes.sms_code_login(phone=member.phone, code=wrong)

    assert _all_at_once(TRIES, guess) == []
    stored = SmsCode.objects.get(member=member)
    assert stored.failures == settings.LUNXUN_SMS_CODE_MAX_FAILURES
    assert stored.revoked
    with pytest.raises(sms_codes.SmsCodeError):
        sms_codes.sms_code_login(phone=member.phone, code=code)


@pytest.mark.django_db(transaction=True)
def test_parallel_tries_of_one_right_code_log_in_once(city, held_between_read_and_claim):
    member = factories.member(city.branch_a, name="老党员", phone="13700000009")
    sms_codes.sms_code_send(phone=member.phone, purpose="login")
    code = last_code("137****0009")
    won = []

    def right(index):
        try:
            sms_codes.sms_code_login(phone=member.phone, code=code)
        except sms_codes.SmsCodeError:
            return
        won.append(index)

    assert _all_at_once(RIGHT_TRIES, right) == []
    assert len(won) == 1
    assert SmsCode.objects.get(member=member).used_at is not None
