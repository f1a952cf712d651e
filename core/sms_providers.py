"""SMS backends for the providers Chinese governments use: Alibaba Cloud SMS (阿里云短信) and
Tencent Cloud SMS (腾讯云短信), through their official SDKs.

Select one with ``LUNXUN_SMS_BACKEND=core.sms_providers.AliyunSmsBackend`` (or
``...TencentSmsBackend``); everything else comes from the environment (config/settings/base.py,
docs/settings.md). A system check (core/checks.py) names whatever the selected backend still
misses, so a half-configured provider stops the site at start-up, not at the first message.

Providers send only templates they approved, each with a signature (签名). A message is sent with
the template configured for its ``purpose`` (``LUNXUN_SMS_TEMPLATES``), filled with its
``params`` in the order ``LUNXUN_SMS_TEMPLATE_PARAMS`` gives (Tencent's templates number their
parameters {1}, {2}...; Alibaba's name them ${code}...). A message no template can carry is never
dropped in silence: it is refused, logged, and raises ``SmsSendError`` unless the caller asked for
``fail_silently``. So is a number the provider refuses (daily limit, blacklist...): the backend
counts only what the provider accepted. When a request fails as a whole (a timeout, a wrong key)
the messages still waiting are refused with it rather than waiting, each, for the same timeout.

Secrets never reach the log; numbers appear masked. The SDKs are imported when a backend is
used, so a site on the console backend does not load them.
"""

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from .sms import PURPOSES, BaseSmsBackend, SmsMessage, SmsSendError, mask_phone

logger = logging.getLogger(__name__)

TEMPLATE_VARIABLE = "LUNXUN_SMS_TEMPLATE_{}"
PARAMS_VARIABLE = "LUNXUN_SMS_TEMPLATE_{}_PARAMS"
# A mainland mobile number, and any number in international form (+ country code).
MAINLAND = re.compile(r"1\d{10}")
INTERNATIONAL = re.compile(r"\+\d{7,15}")


def template_variable(purpose: str) -> str:
    return TEMPLATE_VARIABLE.format(purpose.upper())


def params_variable(purpose: str) -> str:
    return PARAMS_VARIABLE.format(purpose.upper())


def param_names(purpose: str) -> list[str] | None:
    """The parameters ``purpose``'s template takes, in order, or None for a purpose nobody
    described (not in PURPOSES, no ..._PARAMS variable)."""
    configured = settings.LUNXUN_SMS_TEMPLATE_PARAMS.get(purpose)
    if configured:
        return list(configured)
    if purpose in PURPOSES:
        return list(PURPOSES[purpose])
    return None


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """("https", "host[:port]") from a bare host (HTTPS) or a URL (its scheme: tests use http)."""
    endpoint = endpoint.strip()
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        return parts.scheme, parts.netloc
    return "https", endpoint.rstrip("/")


def international(phone: str) -> str | None:
    """``phone`` as +<country code><number>, or None when it is not a phone number."""
    phone = re.sub(r"[\s-]", "", phone)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if MAINLAND.fullmatch(phone):
        return "+86" + phone
    if INTERNATIONAL.fullmatch(phone):
        return phone
    return None


def scrub(text: str) -> str:
    """An SDK's error without what it may quote of the request: query strings (numbers and
    verification codes travel in Alibaba's) and phone numbers."""
    text = re.sub(r"\?[^\s'\"()]*", "?...", text)
    return re.sub(r"(?<!\d)(?:\+?86)?1\d{10}(?!\d)", lambda found: mask_phone(found[0][-11:]), text)


@dataclass(frozen=True)
class Outgoing:
    """A message ready for its provider: the number in the provider's form, its template and
    the template's values (name, value) in the template's order."""

    message: SmsMessage
    phone: str
    template: str
    values: tuple[tuple[str, str], ...]

    @property
    def masked(self) -> str:
        return mask_phone(self.message.phone)


@dataclass(frozen=True)
class Refusal:
    message: SmsMessage
    code: str
    reason: str

    def __str__(self):
        purpose = self.message.purpose or "no purpose"
        return f"{mask_phone(self.message.phone)} ({purpose}): {self.code} {self.reason}".strip()


class ProviderSmsBackend(BaseSmsBackend):
    """What both providers share: templates per purpose, numbers checked, refusals counted."""

    label = ""  # in messages and the log: "Alibaba Cloud SMS"
    sdk = ""  # the module the SDK must provide
    # The settings (named as their environment variables) the backend cannot work without.
    required: tuple[str, ...] = ()

    @classmethod
    def configuration_errors(cls) -> list[str]:
        """What is missing or wrong, one sentence each naming the environment variable."""
        problems = []
        try:
            __import__(cls.sdk)
        except ImportError:
            problems.append(f"The {cls.label} SDK ({cls.sdk}) is not installed.")
        missing = [name for name in cls.required if not str(getattr(settings, name, "")).strip()]
        missing += [
            template_variable(purpose)
            for purpose in PURPOSES
            if not settings.LUNXUN_SMS_TEMPLATES.get(purpose)
        ]
        if missing:
            problems.append(f"{cls.label} is selected but these are not set: {', '.join(missing)}.")
        for purpose, names in settings.LUNXUN_SMS_TEMPLATE_PARAMS.items():
            known = PURPOSES.get(purpose)
            unknown = [name for name in names if known is not None and name not in known]
            if unknown:
                problems.append(
                    f"{params_variable(purpose)} names {', '.join(unknown)}, which a "
                    f"{purpose} message does not carry (it carries {', '.join(known)})."
                )
        return problems

    def send_messages(self, messages: list[SmsMessage]) -> int:
        if not messages:
            return 0
        outgoing, refused = [], []
        for message in messages:
            prepared = self.prepare(message)
            (outgoing if isinstance(prepared, Outgoing) else refused).append(prepared)
        sent = 0
        batches = self.batches(outgoing)
        for index, batch in enumerate(batches):
            try:
                results = self.send_batch(batch)
            except Exception as error:  # the gateway's or the SDK's: the request failed whole
                code = str(getattr(error, "code", "") or type(error).__name__)
                reason = scrub(str(getattr(error, "message", "") or error))
                waiting = [item for later in batches[index:] for item in later]
                refused += [Refusal(item.message, code, reason) for item in waiting]
                break
            for item, code, reason in results:
                if code is None:
                    sent += 1
                    logger.info("%s sent %s to %s", self.label, item.message.purpose, item.masked)
                else:
                    refused.append(Refusal(item.message, code, scrub(reason)))
        for refusal in refused:
            logger.warning("%s did not send an SMS to %s", self.label, refusal)
        if refused and not self.fail_silently:
            raise SmsSendError(
                f"{self.label} sent {sent} of {len(messages)} messages; not sent: "
                + summary(refused),
                sent=sent,
                refused=tuple(str(refusal) for refusal in refused),
            )
        return sent

    def prepare(self, message: SmsMessage) -> "Outgoing | Refusal":
        template = settings.LUNXUN_SMS_TEMPLATES.get(message.purpose) if message.purpose else None
        if not template:
            if not message.purpose:
                return Refusal(
                    message, "no-purpose", "the message has no purpose, so no template to send"
                )
            return Refusal(
                message,
                "no-template",
                f"no template for {message.purpose}: set {template_variable(message.purpose)}",
            )
        names = param_names(message.purpose)
        if names is None:
            names = list(message.params)
        lacking = [name for name in names if name not in message.params]
        if lacking:
            return Refusal(
                message, "no-param", f"the message lacks {', '.join(lacking)} for its template"
            )
        phone = self.provider_phone(message.phone)
        if phone is None:
            return Refusal(message, "bad-number", "not a mobile phone number")
        values = tuple((name, str(message.params[name])) for name in names)
        return Outgoing(message=message, phone=phone, template=template, values=values)

    @staticmethod
    def timeouts() -> tuple[int, int]:
        return settings.LUNXUN_SMS_CONNECT_TIMEOUT, settings.LUNXUN_SMS_READ_TIMEOUT

    # What each provider does its own way.

    def provider_phone(self, phone: str) -> str | None:
        raise NotImplementedError

    def batches(self, outgoing: list[Outgoing]) -> list[list[Outgoing]]:
        raise NotImplementedError

    def send_batch(self, batch: list[Outgoing]) -> list[tuple[Outgoing, str | None, str]]:
        """Send one request; (item, None, "") for each accepted, (item, code, reason) for each
        refused. Raises when the request failed as a whole."""
        raise NotImplementedError


def summary(refused: list[Refusal], shown: int = 3) -> str:
    """Refusals by cause, each with the first few (masked) numbers it stopped."""
    causes = defaultdict(list)
    for refusal in refused:
        causes[refusal.code, refusal.reason].append(mask_phone(refusal.message.phone))
    parts = []
    for (code, reason), phones in causes.items():
        more = f" and {len(phones) - shown} more" if len(phones) > shown else ""
        parts.append(f"{code} {reason} ({', '.join(phones[:shown])}{more})")
    return "; ".join(parts)


def _chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class AliyunSmsBackend(ProviderSmsBackend):
    """Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms for one text to up to 1,000 numbers,
    SendBatchSms for up to 100 numbers of one template, each with its own values. Its answer is
    one code for the whole request, so a refused request refuses all its numbers."""

    label = "Alibaba Cloud SMS"
    sdk = "alibabacloud_dysmsapi20170525.client"
    required = (
        "LUNXUN_SMS_ALIYUN_ACCESS_KEY_ID",
        "LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET",
        "LUNXUN_SMS_ALIYUN_SIGN_NAME",
        "LUNXUN_SMS_ALIYUN_REGION",
        "LUNXUN_SMS_ALIYUN_ENDPOINT",
    )
    SEND_LIMIT = 1000
    BATCH_LIMIT = 100
    # Time-sensitive: each in a SendSms of its own, as Alibaba advises, never held up by others.
    ONE_BY_ONE = {"verification_code"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._client = None

    def client(self):
        if self._client is None:
            from alibabacloud_dysmsapi20170525.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            scheme, host = split_endpoint(settings.LUNXUN_SMS_ALIYUN_ENDPOINT)
            connect, read = self.timeouts()
            self._client = Client(
                Config(
                    access_key_id=settings.LUNXUN_SMS_ALIYUN_ACCESS_KEY_ID,
                    access_key_secret=settings.LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET,
                    region_id=settings.LUNXUN_SMS_ALIYUN_REGION,
                    endpoint=host,
                    protocol=scheme,
                    connect_timeout=connect * 1000,
                    read_timeout=read * 1000,
                )
            )
        return self._client

    def provider_phone(self, phone):
        # Mainland numbers as they are; others as country code and number, without the "+".
        number = international(phone)
        if number is None:
            return None
        return number[3:] if number.startswith("+86") else number[1:]

    def batches(self, outgoing):
        # One text to several numbers: SendSms. Texts of one template that differ (a reminder
        # names its member): together in SendBatchSms.
        alike = defaultdict(list)
        batches, single = [], defaultdict(list)
        for item in outgoing:
            if item.message.purpose in self.ONE_BY_ONE:
                batches.append([item])
            else:
                alike[item.template, item.values].append(item)
        for (template, _values), items in alike.items():
            if len(items) > 1:
                batches += _chunks(items, self.SEND_LIMIT)
            else:
                single[template] += items
        for items in single.values():
            batches += _chunks(items, self.BATCH_LIMIT)
        return batches

    def send_batch(self, batch):
        from alibabacloud_dysmsapi20170525 import models
        from darabonba.runtime import RuntimeOptions

        first = batch[0]
        if len({item.values for item in batch}) == 1:
            request = models.SendSmsRequest(
                phone_numbers=",".join(item.phone for item in batch),
                sign_name=settings.LUNXUN_SMS_ALIYUN_SIGN_NAME,
                template_code=first.template,
                template_param=json.dumps(
                    dict(first.values), ensure_ascii=False, separators=(",", ":")
                ),
            )
            send = self.client().send_sms_with_options
        else:
            request = models.SendBatchSmsRequest(
                phone_number_json=json.dumps([item.phone for item in batch], separators=(",", ":")),
                sign_name_json=json.dumps(
                    [settings.LUNXUN_SMS_ALIYUN_SIGN_NAME] * len(batch),
                    ensure_ascii=False,
                    separators=(",", ":"),
                ),
                template_code=first.template,
                template_param_json=json.dumps(
                    [dict(item.values) for item in batch], ensure_ascii=False, separators=(",", ":")
                ),
            )
            send = self.client().send_batch_sms_with_options
        # The timeouts are the client's (Config); no retries behind the caller's back.
        response = send(request, RuntimeOptions(autoretry=False))
        code, reason = response.body.code, response.body.message or ""
        if code == "OK":
            return [(item, None, "") for item in batch]
        return [(item, code or "unknown", reason) for item in batch]


class TencentSmsBackend(ProviderSmsBackend):
    """Tencent Cloud SMS (sms 2021-01-11): SendSms, one template and one set of values for up
    to 200 numbers, each number answered on its own (SendStatusSet)."""

    label = "Tencent Cloud SMS"
    sdk = "tencentcloud.sms.v20210111.sms_client"
    required = (
        "LUNXUN_SMS_TENCENT_SECRET_ID",
        "LUNXUN_SMS_TENCENT_SECRET_KEY",
        "LUNXUN_SMS_TENCENT_SDK_APP_ID",
        "LUNXUN_SMS_TENCENT_SIGN_NAME",
        "LUNXUN_SMS_TENCENT_REGION",
        "LUNXUN_SMS_TENCENT_ENDPOINT",
    )
    SEND_LIMIT = 200

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._client = None

    def client(self):
        if self._client is None:
            from tencentcloud.common.credential import Credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            from tencentcloud.sms.v20210111.sms_client import SmsClient

            scheme, host = split_endpoint(settings.LUNXUN_SMS_TENCENT_ENDPOINT)
            # The SDK hands the timeout to requests: (connect, read).
            http = HttpProfile(protocol=scheme, endpoint=host, reqTimeout=self.timeouts())
            self._client = SmsClient(
                Credential(
                    settings.LUNXUN_SMS_TENCENT_SECRET_ID, settings.LUNXUN_SMS_TENCENT_SECRET_KEY
                ),
                settings.LUNXUN_SMS_TENCENT_REGION,
                ClientProfile(httpProfile=http),
            )
        return self._client

    def provider_phone(self, phone):
        return international(phone)

    def batches(self, outgoing):
        alike = defaultdict(list)
        for item in outgoing:
            alike[item.template, item.values].append(item)
        return [chunk for items in alike.values() for chunk in _chunks(items, self.SEND_LIMIT)]

    def send_batch(self, batch):
        from tencentcloud.sms.v20210111 import models

        first = batch[0]
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [item.phone for item in batch]
        request.SmsSdkAppId = settings.LUNXUN_SMS_TENCENT_SDK_APP_ID
        request.SignName = settings.LUNXUN_SMS_TENCENT_SIGN_NAME
        request.TemplateId = first.template
        request.TemplateParamSet = [value for _name, value in first.values]
        response = self.client().SendSms(request)
        statuses = defaultdict(list)
        for status in response.SendStatusSet or []:
            statuses[status.PhoneNumber].append(status)
        results = []
        for item in batch:
            status = statuses[item.phone].pop(0) if statuses[item.phone] else None
            if status is None:
                results.append((item, "no-status", "the provider did not answer for this number"))
            elif status.Code == "Ok":
                results.append((item, None, ""))
            else:
                results.append((item, status.Code, status.Message or ""))
        return results
