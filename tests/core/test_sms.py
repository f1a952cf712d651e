"""Text messages are sent from core.sms; settings written when they lived elsewhere still work.

(Moved from tests/members/test_password_reset.py, where it checked that rounds.sms re-exported
members.sms. Both modules are gone; what a deployment's settings may name is what stays.)
"""

import importlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core import sms


def test_the_old_console_backend_paths_keep_working():
    # Settings naming the old path keep working.
    assert isinstance(sms.get_sms_backend("rounds.sms.ConsoleBackend"), sms.ConsoleBackend)
    assert isinstance(sms.get_sms_backend("members.sms.ConsoleBackend"), sms.ConsoleBackend)
    assert isinstance(sms.get_sms_backend("core.sms.ConsoleBackend"), sms.ConsoleBackend)


def test_the_default_backend_is_cores_console_backend():
    source = (Path(settings.BASE_DIR) / "config" / "settings" / "base.py").read_text()
    assert '"LUNXUN_SMS_BACKEND", "core.sms.ConsoleBackend"' in source


@pytest.mark.parametrize("module", ["members.sms", "rounds.sms"])
def test_anything_else_in_an_old_module_fails_naming_the_new_one(module, settings):
    settings.LUNXUN_SMS_BACKEND = f"{module}.BaseSmsBackend"
    with pytest.raises(ImproperlyConfigured) as error:
        sms.send_sms([sms.SmsMessage("13800000001", "x")])
    assert "core.sms.BaseSmsBackend" in str(error.value)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(module)
