"""Settings for the test suite: same profile as the default, faster hashing, immediate tasks."""

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
MEDIA_ROOT = VAR_DIR / "test-media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "video": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if not os.environ.get("DATABASE_URL"):
    # A file, not memory: the browser tests' live server and the test share one database,
    # and this exercises the same WAL/IMMEDIATE options the product runs with.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
