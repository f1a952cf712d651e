"""Local development and `make demo`: the embedded default with debugging on."""

from .base import *  # noqa: F403

DEBUG = True
