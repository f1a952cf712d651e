"""Text messages: the sending lives in ``members.sms`` (members tells a member their password was
reset, and members may not import rounds). Re-exported here for the reminders and for settings
that name ``rounds.sms.ConsoleBackend``."""

from members.sms import BaseSmsBackend, ConsoleBackend, SmsMessage, get_sms_backend, send_sms

__all__ = ["BaseSmsBackend", "ConsoleBackend", "SmsMessage", "get_sms_backend", "send_sms"]
