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
    # One file per test run, inherited by what the run starts: two runs on one machine (a
    # developer's and an editor's, say) never share a database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.setdefault(
            "LUNXUN_TEST_SQLITE", str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
        )
    }
