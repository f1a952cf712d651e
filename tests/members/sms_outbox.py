"""The console SMS backend (the real default) with an outbox tests can read: each message as
the console printed it, so a test takes the code from where a person would read it."""

import io
import re

from core.sms import ConsoleBackend, SmsMessage

BACKEND = "tests.members.sms_outbox.RecordingConsoleBackend"


class RecordingConsoleBackend(ConsoleBackend):
    lines: list[str] = []  # what the console printed, one line a message
    messages: list[SmsMessage] = []

    def __init__(self, **kwargs):
        kwargs["stream"] = io.StringIO()
        super().__init__(**kwargs)

    def send_messages(self, messages):
        sent = super().send_messages(messages)
        RecordingConsoleBackend.lines.extend(self.stream.getvalue().splitlines())
        RecordingConsoleBackend.messages.extend(messages)
        return sent


class BrokenBackend(ConsoleBackend):
    """A gateway that is down."""

    def send_messages(self, messages):
        raise ConnectionError("gateway unreachable")


def clear():
    RecordingConsoleBackend.lines = []
    RecordingConsoleBackend.messages = []


def last_code(masked_phone: str) -> str:
    """The six digits of the last message printed for ``masked_phone`` (138****0001)."""
    for line in reversed(RecordingConsoleBackend.lines):
        if line.startswith(f"SMS to {masked_phone}:"):
            return re.search(r"(?<!\d)(\d{6})(?!\d)", line).group(1)
    raise AssertionError(f"no SMS printed for {masked_phone}: {RecordingConsoleBackend.lines}")
