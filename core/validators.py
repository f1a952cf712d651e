import re

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

CHARACTER_CLASSES = (
    re.compile(r"[a-z]"),
    re.compile(r"[A-Z]"),
    re.compile(r"[0-9]"),
    re.compile(r"[^a-zA-Z0-9]"),
)


class CharacterClassValidator:
    """等保 2.0: a password mixes at least ``min_classes`` of lower, upper, digits, symbols."""

    def __init__(self, min_classes=3):
        self.min_classes = min_classes

    def validate(self, password, user=None):
        found = sum(1 for pattern in CHARACTER_CLASSES if pattern.search(password))
        if found < self.min_classes:
            raise ValidationError(self.get_help_text(), code="password_too_simple")

    def get_help_text(self):
        return ngettext(
            "Your password must mix at least %(n)d kind of character: "
            "lower-case letters, upper-case letters, digits and symbols.",
            "Your password must mix at least %(n)d kinds of characters: "
            "lower-case letters, upper-case letters, digits and symbols.",
            self.min_classes,
        ) % {"n": self.min_classes}
