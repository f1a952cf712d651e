"""Production settings pass Django's deployment checks, and our own refuse unsafe values."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from core.checks import weak_secret_key

ROOT = Path(__file__).resolve().parent.parent


def deploy_check(**env):
    environ = {
        key: value
        for key, value in os.environ.items()
        # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; no deployment does.
        # Each test names its own profile: the database, cache and storage this test run uses
        # (scripts/with-postgres.sh exports DATABASE_URL) are not the deployment's.
        if key
        not in {
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "DATABASE_URL",
            "REDIS_URL",
        }
        and not key.startswith("LUNXUN_S3_")
    }
    environ.update(DJANGO_SETTINGS_MODULE="config.settings.production", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def strong_key():
    return secrets.token_urlsafe(50)


def test_production_settings_pass_the_deployment_checks():
    result = deploy_check(SECRET_KEY=strong_key(), ALLOWED_HOSTS="lunxun.example.cn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_scale_profile_settings_pass_the_deployment_checks():
    """The city profile (PostgreSQL, Redis, object storage) is checked the same way."""
    result = deploy_check(
        SECRET_KEY=strong_key(),
        ALLOWED_HOSTS="lunxun.example.cn,www.lunxun.example.cn",
        DATABASE_URL="postgres://lunxun@127.0.0.1:5432/lunxun",
        REDIS_URL="redis://127.0.0.1:6379/0",
        LUNXUN_S3_BUCKET="lunxun",
        LUNXUN_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    # check --deploy does not connect to the database unless asked (--database).
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_city_without_the_shared_cache_is_refused():
    """Two or more gunicorn instances behind one upstream share rate limits only in Redis."""
    result = deploy_check(
        SECRET_KEY=strong_key(),
        ALLOWED_HOSTS="lunxun.example.cn",
        DATABASE_URL="postgres://lunxun@127.0.0.1:5432/lunxun",
        REDIS_URL="",  # no Redis: the cache falls back to local memory
        LUNXUN_S3_BUCKET="lunxun",
        LUNXUN_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    assert result.returncode != 0
    assert "lunxun.E005" in result.stderr + result.stdout


@pytest.mark.parametrize("hosts", ["*", "lunxun.example.cn,*", "*.example.cn"])
def test_wildcard_allowed_hosts_is_refused(hosts):
    result = deploy_check(SECRET_KEY=strong_key(), ALLOWED_HOSTS=hosts)
    assert result.returncode != 0
    assert "lunxun.E001" in result.stderr + result.stdout


@pytest.mark.parametrize(
    "key",
    [
        "dev-only-insecure-key-change-me-in-production",
        "django-insecure-" + "x" * 60,
        "short-key",
        "ab" * 40,
    ],
)
def test_weak_secret_key_is_refused(key):
    result = deploy_check(SECRET_KEY=key, ALLOWED_HOSTS="lunxun.example.cn")
    assert result.returncode != 0
    assert "lunxun.E002" in result.stderr + result.stdout


def test_production_settings_need_a_secret_key_and_hosts():
    result = deploy_check(ALLOWED_HOSTS="lunxun.example.cn")
    assert result.returncode != 0
    assert "Set SECRET_KEY in the environment" in result.stderr


def test_weak_secret_key_reasons():
    assert weak_secret_key(strong_key()) is None
    assert "published" in weak_secret_key("dev-only-insecure-key-change-me-in-production")
    assert "fewer than 50" in weak_secret_key("x" * 20)
    assert "different characters" in weak_secret_key("abc" * 30)


# --- Entry points default to production ------------------------------------------------------

WSGI_REQUEST = """
import io, sys
from config.wsgi import application
from django.conf import settings
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/no-such-page", "SERVER_NAME": "lunxun.example.cn",
    "SERVER_PORT": "443", "HTTP_HOST": "lunxun.example.cn", "wsgi.url_scheme": "https",
    "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(),
}
seen = {}
body = b"".join(application(environ, lambda status, headers: seen.update(status=status)))
print(settings.SETTINGS_MODULE, settings.DEBUG, seen["status"])
sys.stdout.flush()
sys.stdout.buffer.write(body)
"""


def entry_point_environ(tmp_path, **env):
    """This environment without any settings module named: what a forgetful deployment has."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    # An empty instance: the request fails on the missing tables, which shows the error page.
    environ.update(LUNXUN_VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT), **env)
    return environ


def test_wsgi_entry_point_defaults_to_production_without_technical_pages(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WSGI_REQUEST],
        cwd=tmp_path,
        env=entry_point_environ(
            tmp_path, SECRET_KEY=strong_key(), ALLOWED_HOSTS="lunxun.example.cn"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first_line, _, body = result.stdout.partition("\n")
    assert first_line.startswith("config.settings.production False ")
    # Django's technical pages show the traceback, the settings and the URL list.
    for leak in ("Traceback", "DEBUG = True", "URLconf", "SECRET_KEY", "Request Method"):
        assert leak not in body


def test_wsgi_entry_point_refuses_to_start_without_a_secret_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WSGI_REQUEST],
        cwd=tmp_path,
        env=entry_point_environ(tmp_path, ALLOWED_HOSTS="lunxun.example.cn"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Set SECRET_KEY in the environment" in result.stderr


def test_manage_py_defaults_to_production(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "-v",
            "0",
            "-c",
            "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)",
        ],
        cwd=ROOT,
        env=entry_point_environ(
            tmp_path, SECRET_KEY=strong_key(), ALLOWED_HOSTS="lunxun.example.cn"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.production", "False"]


def test_gunicorn_configuration_defaults_to_production(monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    config = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), config)
    assert config["wsgi_app"] == "config.wsgi:application"
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in config["raw_env"]


def test_gunicorn_freezes_the_preloaded_application_before_each_fork():
    """Workers inherit the preloaded app frozen: the collector's full collections skip it."""
    import gc

    config = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), config)
    gc.unfreeze()
    try:
        config["pre_fork"](None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_gunicorn_configuration_keeps_settings_named_by_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.test")
    config = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), config)
    assert "DJANGO_SETTINGS_MODULE=config.settings.test" in config["raw_env"]
