"""Text messages (短信) through a pluggable backend, the way Django sends email.

Here in core, so that every app may send: members tells a member their password was reset,
rounds sends reminders.

``settings.LUNXUN_SMS_BACKEND`` names the backend class. The default, ``ConsoleBackend``, writes
each message to stdout and the log, so the embedded default needs no SMS gateway. A deployment
plugs in its provider by writing a subclass of ``BaseSmsBackend`` that implements
``send_messages`` and pointing the setting at it; ``core.sms_providers`` has the backends of
Alibaba Cloud SMS and Tencent Cloud SMS (docs/settings.md). The console backend's older names
(``members.sms.ConsoleBackend``, ``rounds.sms.ConsoleBackend``) still work; any other path in
those modules, which are gone, stops with a message naming the new one.
"""

import logging
import sys
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Where this module lived before: settings written then keep working for the console backend.
OLD_MODULES = ("members.sms", "rounds.sms")


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise a number, not enough to call it."""
    if len(phone) != 11:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[7:]}"


# What a message is for. Chinese SMS providers send only pre-approved templates with named
# parameters, so a provider backend sends ``purpose``'s template filled with ``params``; the
# console backend (and any backend that sends free text) sends ``text``, the same message in
# words. Every purpose below carries the ``params`` listed beside it.
PURPOSES = {
    "verification_code": ("code", "minutes"),
    "password_reset_notice": ("name", "when"),
    "reminder": ("name", "round", "deadline"),
}


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str
    purpose: str = ""
    params: dict = field(default_factory=dict, compare=True, hash=False)


class SmsSendError(Exception):
    """A backend could not send some of the messages: ``sent`` went out, ``refused`` lists why
    the others did not (one line each: provider code and message, the number masked)."""

    def __init__(self, message: str, *, sent: int = 0, refused: tuple[str, ...] = ()):
        super().__init__(message)
        self.sent = sent
        self.refused = tuple(refused)


class BaseSmsBackend:
    """Override point: send a batch of messages, return how many were sent.

    ``fail_silently`` asks the backend to swallow delivery errors (and count them as not sent)
    instead of raising.
    """

    def __init__(self, *, fail_silently: bool = False, **kwargs):
        self.fail_silently = fail_silently

    def send_messages(self, messages: list[SmsMessage]) -> int:
        raise NotImplementedError("SMS backends must implement send_messages()")


class ConsoleBackend(BaseSmsBackend):
    """Writes messages to a stream (stdout by default) and the log instead of sending them.

    Numbers are masked: a console or a log file is not a place for members' phone numbers.
    """

    def __init__(self, *, stream=None, **kwargs):
        super().__init__(**kwargs)
        self.stream = stream
        self._lock = threading.RLock()

    def send_messages(self, messages: list[SmsMessage]) -> int:
        if not messages:
            return 0
        stream = self.stream or sys.stdout
        sent = 0
        with self._lock:
            try:
                for message in messages:
                    masked = mask_phone(message.phone)
                    stream.write(f"SMS to {masked}: {message.text}\n")
                    logger.info("SMS to %s: %s", masked, message.text)
                    sent += 1
                stream.flush()
            except Exception:
                if not self.fail_silently:
                    raise
        return sent


def _backend_class(path: str):
    module, _dot, name = path.rpartition(".")
    if module in OLD_MODULES:
        if name == "ConsoleBackend":
            return ConsoleBackend
        raise ImproperlyConfigured(
            f"LUNXUN_SMS_BACKEND names {path}, but {module} is gone: SMS backends live in "
            f"core.sms now (core.sms.{name}; a backend of your own subclasses "
            "core.sms.BaseSmsBackend)."
        )
    return import_string(path)


def get_sms_backend(backend: str | None = None, **kwargs) -> BaseSmsBackend:
    """An instance of ``backend`` (a dotted path), by default ``settings.LUNXUN_SMS_BACKEND``."""
    return _backend_class(backend or settings.LUNXUN_SMS_BACKEND)(**kwargs)


def send_sms(messages: list[SmsMessage], *, fail_silently: bool = False) -> int:
    """Send ``messages`` through the configured backend; returns how many were sent."""
    if not messages:
        return 0
    return get_sms_backend(fail_silently=fail_silently).send_messages(list(messages))
