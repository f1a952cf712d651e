"""The Alibaba Cloud and Tencent Cloud SMS backends, through the providers' official SDKs, against
a local fake of each provider's HTTP API (tests/sms_fakes.py: it verifies the signatures and
answers as the provider does). No test reaches the network (``no_network``).
"""

import json
import logging
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks

from core.sms import SmsMessage, SmsSendError, send_sms
from core.sms_providers import scrub
from tests.sms_fakes import (
    ALIYUN,
    KEY_SECRET,
    SECRET_KEY,
    TENCENT,
    FakeAliyun,
    FakeTencent,
    configure,
    only_loopback,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    return only_loopback(monkeypatch)


@pytest.fixture
def aliyun(settings):
    fake = FakeAliyun()
    configure(settings, ALIYUN, fake.url)
    yield fake
    fake.close()


@pytest.fixture
def tencent(settings):
    fake = FakeTencent()
    configure(settings, TENCENT, fake.url)
    yield fake
    fake.close()


@pytest.fixture(params=[ALIYUN, TENCENT])
def provider(request):
    """Either fake, the settings pointing at it."""
    return request.getfixturevalue("aliyun" if request.param == ALIYUN else "tencent")


def code(phone="13800000001", value="246810"):
    return SmsMessage(phone, f"验证码 {value}", "verification_code", {"code": value, "minutes": 5})


def reminder(phone, name, round_="二季度轮训", deadline="6月30日"):
    return SmsMessage(
        phone, "reminder text", "reminder", {"name": name, "round": round_, "deadline": deadline}
    )


def reset_notice(phone="13800000009"):
    return SmsMessage(
        phone, "reset text", "password_reset_notice", {"name": "王芳", "when": "2026-12-03 09:00"}
    )


# --- Alibaba Cloud ----------------------------------------------------------------------------


def test_a_verification_code_reaches_aliyun_signed_with_its_template_and_values(aliyun):
    assert send_sms([code("13800000001", "246810")]) == 1
    assert aliyun.accepted == [
        {"action": "SendSms", "phone": "13800000001", "text": "您的验证码为246810，5分钟内有效。"}
    ]


def test_aliyun_sends_the_reset_notice_and_reminders_with_their_own_templates(aliyun):
    messages = [
        reset_notice("13800000009"),
        reminder("13800000001", "张伟"),
        reminder("13800000002", "李娜"),
        reminder("+86 138-0000-0003", "刘洋"),
    ]
    assert send_sms(messages) == 4
    assert aliyun.texts() == [
        "王芳同志，您的培训账号密码已于2026-12-03 09:00重置。",
        "张伟同志，请于6月30日前完成《二季度轮训》的学习。",
        "李娜同志，请于6月30日前完成《二季度轮训》的学习。",
        "刘洋同志，请于6月30日前完成《二季度轮训》的学习。",
    ]
    # The three reminders differ by name: one SendBatchSms carries them, numbers in Aliyun's form.
    assert [item["action"] for item in aliyun.accepted] == ["SendSms"] + ["SendBatchSms"] * 3
    assert [item["phone"] for item in aliyun.accepted][1:] == [
        "13800000001",
        "13800000002",
        "13800000003",
    ]
    assert len(aliyun.requests) == 2


def test_aliyun_sends_one_text_to_many_numbers_in_one_request_and_batches_by_100(aliyun):
    same = [reminder(f"139{n:08d}", "同志们") for n in range(3)]
    different = [reminder(f"137{n:08d}", f"委员{n}") for n in range(150)]
    assert send_sms(same + different) == 153
    assert len(aliyun.requests) == 3  # one SendSms for the same text, 100 + 50 in SendBatchSms
    assert [item["action"] for item in aliyun.accepted[:3]] == ["SendSms"] * 3
    assert aliyun.texts()[-1] == "委员149同志，请于6月30日前完成《二季度轮训》的学习。"


def test_a_number_aliyun_refuses_is_not_counted_and_the_error_names_the_code(aliyun, caplog):
    aliyun.limited = {"13800000002"}
    caplog.set_level(logging.DEBUG)
    messages = [code("13800000001", "111111"), code("13800000002", "222222")]
    with pytest.raises(SmsSendError) as error:
        send_sms(messages)
    assert error.value.sent == 1
    assert "isv.BUSINESS_LIMIT_CONTROL" in str(error.value)
    assert "138****0002" in str(error.value)
    assert aliyun.texts() == ["您的验证码为111111，5分钟内有效。"]
    # Asked to fail silently, it counts what went out and logs the rest.
    assert send_sms(messages, fail_silently=True) == 1
    assert "isv.BUSINESS_LIMIT_CONTROL" in caplog.text
    # Neither the secret, nor a whole number, nor a code goes to the log or the error.
    for secret in (KEY_SECRET, "13800000002", "222222"):
        assert secret not in caplog.text
        assert secret not in str(error.value)


def test_aliyun_requests_signed_with_another_secret_are_refused(aliyun, settings):
    settings.LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET = "not-the-secret"
    with pytest.raises(SmsSendError) as error:
        send_sms([code()])
    assert "SignatureDoesNotMatch" in str(error.value)
    assert "not-the-secret" not in str(error.value)
    assert aliyun.accepted == []


# --- Tencent Cloud ----------------------------------------------------------------------------


def test_a_verification_code_reaches_tencent_signed_with_its_template_and_values(tencent):
    assert send_sms([code("13800000001", "246810")]) == 1
    assert tencent.accepted == [
        {"phone": "+8613800000001", "text": "您的验证码为246810，5分钟内有效。"}
    ]


def test_tencent_fills_numbered_parameters_in_the_configured_order(tencent, settings):
    assert send_sms([reset_notice("13800000009"), reminder("13800000001", "张伟")]) == 2
    assert tencent.texts() == [
        "王芳同志，您的培训账号密码已于2026-12-03 09:00重置。",
        "张伟同志，请于6月30日前完成《二季度轮训》的学习。",  # {1} name, {2} deadline, {3} round
    ]
    # Without LUNXUN_SMS_TEMPLATE_REMINDER_PARAMS the order is PURPOSES's: round before deadline.
    settings.LUNXUN_SMS_TEMPLATE_PARAMS = {}
    send_sms([reminder("13800000002", "李娜")])
    assert tencent.texts()[-1] == "李娜同志，请于二季度轮训前完成《6月30日》的学习。"


def test_tencent_sends_alike_messages_together_up_to_200_numbers_a_request(tencent):
    alike = [reminder(f"139{n:08d}", "同志们") for n in range(201)]
    different = [reminder("13700000001", "张伟"), reminder("13700000002", "李娜")]
    assert send_sms(alike + different) == 203
    answered = [len(request["answer"]["Response"]["SendStatusSet"]) for request in tencent.requests]
    assert answered == [200, 1, 1, 1]


def test_a_number_tencent_refuses_is_not_counted_and_the_error_names_the_code(tencent, caplog):
    tencent.limited = {"+8613900000001"}
    caplog.set_level(logging.DEBUG)
    messages = [reminder(f"139{n:08d}", "同志们") for n in range(3)]
    with pytest.raises(SmsSendError) as error:
        send_sms(messages)
    assert error.value.sent == 2
    assert "LimitExceeded.PhoneNumberDailyLimit" in str(error.value)
    assert "139****0001" in str(error.value)
    assert send_sms(messages, fail_silently=True) == 2
    assert "LimitExceeded.PhoneNumberDailyLimit" in caplog.text
    for secret in (SECRET_KEY, "13900000001"):
        assert secret not in caplog.text
        assert secret not in str(error.value)


def test_tencent_requests_signed_with_another_secret_are_refused(tencent, settings):
    settings.LUNXUN_SMS_TENCENT_SECRET_KEY = "not-the-secret"
    with pytest.raises(SmsSendError) as error:
        send_sms([code()])
    assert "AuthFailure.SignatureFailure" in str(error.value)
    assert "not-the-secret" not in str(error.value)
    assert tencent.accepted == []


# --- Both -------------------------------------------------------------------------------------


def test_a_purpose_without_a_template_is_refused_loudly(provider, settings, caplog):
    del settings.LUNXUN_SMS_TEMPLATES["reminder"]
    with pytest.raises(SmsSendError) as error:
        send_sms([reminder("13800000001", "张伟"), code("13800000002")])
    assert "LUNXUN_SMS_TEMPLATE_REMINDER" in str(error.value)
    assert error.value.sent == 1  # the verification code, which has its template, went out
    assert send_sms([reminder("13800000001", "张伟")], fail_silently=True) == 0
    assert "LUNXUN_SMS_TEMPLATE_REMINDER" in caplog.text
    assert len(provider.accepted) == 1


def test_a_message_without_a_purpose_or_a_number_is_refused(provider):
    with pytest.raises(SmsSendError) as error:
        send_sms([SmsMessage("13800000001", "free text"), code("12345")])
    assert "no-purpose" in str(error.value) and "bad-number" in str(error.value)
    assert error.value.sent == 0
    assert provider.requests == []


def test_a_hung_gateway_is_given_up_after_the_read_timeout(provider, settings):
    settings.LUNXUN_SMS_READ_TIMEOUT = 2
    provider.hang.set()
    messages = [code("13800000001", "111111"), code("13800000002", "222222")]
    with pytest.raises(SmsSendError) as error:
        send_sms(messages)
    assert "Read timed out. (read timeout=2)" in str(error.value).replace("2.0", "2")
    # Both are refused at once: the second is not sent into the same hung gateway.
    assert error.value.sent == 0 and len(error.value.refused) == 2


@pytest.mark.parametrize(
    "backend, host", [(ALIYUN, "dysmsapi.aliyuncs.com"), (TENCENT, "sms.tencentcloudapi.com")]
)
def test_by_default_the_backends_call_the_providers_own_hosts_and_tests_never_do(
    backend, host, settings, no_network
):
    configure(settings, backend, "")
    settings.LUNXUN_SMS_ALIYUN_ENDPOINT = "dysmsapi.aliyuncs.com"
    settings.LUNXUN_SMS_TENCENT_ENDPOINT = "sms.tencentcloudapi.com"
    with pytest.raises(SmsSendError) as error:
        send_sms([code("13800000001", "246810")])
    assert no_network == [host]
    # The SDK's error quotes the request; the number and the code are not repeated.
    assert "13800000001" not in str(error.value) and "246810" not in str(error.value)


def test_an_sdk_error_quoting_the_request_loses_its_numbers_and_query():
    quoted = (
        "HTTPConnectionPool(host='dysmsapi.aliyuncs.com', port=443): Max retries exceeded with "
        "url: /?PhoneNumbers=13800000001&TemplateParam=%7B%22code%22%3A%22246810%22%7D "
        "(while sending to +8613900000002)"
    )
    assert scrub(quoted) == (
        "HTTPConnectionPool(host='dysmsapi.aliyuncs.com', port=443): Max retries exceeded with "
        "url: /?... (while sending to 139****0002)"
    )


# --- Configuration ----------------------------------------------------------------------------


def sms_errors():
    return [error for error in run_checks() if error.id in ("lunxun.E003", "lunxun.E004")]


def test_a_configured_provider_and_the_console_pass_the_checks(provider, settings):
    assert sms_errors() == []
    settings.LUNXUN_SMS_BACKEND = "core.sms.ConsoleBackend"
    settings.LUNXUN_SMS_TEMPLATES = {}
    assert sms_errors() == []


@pytest.mark.parametrize(
    "backend, setting",
    [
        (ALIYUN, "LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET"),
        (ALIYUN, "LUNXUN_SMS_ALIYUN_SIGN_NAME"),
        (TENCENT, "LUNXUN_SMS_TENCENT_SDK_APP_ID"),
        (TENCENT, "LUNXUN_SMS_TENCENT_SECRET_ID"),
    ],
)
def test_missing_provider_settings_are_a_system_check_error_naming_them(backend, setting, settings):
    configure(settings, backend, "http://127.0.0.1:9")
    setattr(settings, setting, "")
    del settings.LUNXUN_SMS_TEMPLATES["password_reset_notice"]
    errors = sms_errors()
    assert [error.id for error in errors] == ["lunxun.E004"]
    assert setting in errors[0].msg
    assert "LUNXUN_SMS_TEMPLATE_PASSWORD_RESET_NOTICE" in errors[0].msg
    assert "LUNXUN_SMS_TEMPLATE_REMINDER" not in errors[0].msg


def test_a_template_parameter_no_message_carries_is_a_check_error(aliyun, settings):
    settings.LUNXUN_SMS_TEMPLATE_PARAMS = {"reminder": ["name", "deadlne"]}
    errors = sms_errors()
    assert len(errors) == 1 and "LUNXUN_SMS_TEMPLATE_REMINDER_PARAMS" in errors[0].msg
    assert "deadlne" in errors[0].msg


def test_a_backend_that_cannot_be_loaded_is_a_check_error(settings):
    settings.LUNXUN_SMS_BACKEND = "core.sms_providers.HuaweiSmsBackend"
    assert [error.id for error in sms_errors()] == ["lunxun.E003"]


def test_templates_and_their_parameter_order_come_from_the_environment():
    environment = {
        "LUNXUN_SMS_TEMPLATE_VERIFICATION_CODE": "SMS_100",
        "LUNXUN_SMS_TEMPLATE_REMINDER": " 1003 ",
        "LUNXUN_SMS_TEMPLATE_REMINDER_PARAMS": "name, deadline,round",
        "LUNXUN_SMS_TEMPLATE_PASSWORD_RESET_NOTICE": "",
        "PATH": "/usr/bin:/bin",
    }
    script = (
        "import json, config.settings.base as s; "
        "print(json.dumps([s.LUNXUN_SMS_TEMPLATES, s.LUNXUN_SMS_TEMPLATE_PARAMS]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(output) == [
        {"verification_code": "SMS_100", "reminder": "1003"},
        {"reminder": ["name", "deadline", "round"]},
    ]
