"""Reminders by text message through a real provider backend (Tencent Cloud's SDK, against the
local fake of its API in tests/sms_fakes.py): each member reads their own name, the round and
its deadline, and a number the provider refuses does not cost the others their count."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from rounds.reminders import reminders_send
from tests import factories
from tests.sms_fakes import TENCENT, FakeTencent, configure, only_loopback

from . import builders


@pytest.fixture
def tencent(settings, monkeypatch):
    only_loopback(monkeypatch)
    fake = FakeTencent()
    configure(settings, TENCENT, fake.url)
    yield fake
    fake.close()


def test_reminders_reach_the_provider_filled_and_a_refused_number_is_not_counted(
    city, tencent, caplog
):
    training_round = builders.training_round([city.root], title="2026年第四季度专题轮训")
    factories.member(city.branch_a, name="孙丽", phone="13700000003")
    tencent.limited = {"+8613900000002"}  # 李强 had his texts for today
    with time_machine.travel(datetime(2026, 12, 29, 10, tzinfo=ZoneInfo("Asia/Shanghai"))):
        result = reminders_send(training_round=training_round, node=city.root, user=city.trainer)
    assert result.reminded == 3
    assert result.sms == 2
    assert sorted(tencent.texts()) == [
        "孙丽同志，请于12月31日前完成《2026年第四季度专题轮训》的学习。",
        "王芳同志，请于12月31日前完成《2026年第四季度专题轮训》的学习。",
    ]
    assert "LimitExceeded.PhoneNumberDailyLimit" in caplog.text
    assert "139****0002" in caplog.text and "13900000002" not in caplog.text
