"""The scale-profile stack for the story: its own database, bucket, gunicorn, RQ worker, nginx.

scripts/with-scale-stack.sh provides the services (PostgreSQL, Redis, the S3 endpoint) in the
environment. Once per run (``prepared``) a template database is migrated and static files are
collected; each stack then makes its own database as a copy of the template and its own bucket,
prepares the bucket (``manage.py storage_setup``), seeds a small world
(tests/scale/seed.py), and starts two gunicorn instances (deploy/gunicorn.conf.py, production
settings, each on its own port with its own pid file: ``stack.instances``), an RQ worker, the
live-lecture server (``manage.py live_server``: nginx-rtmp, calling back to the first gunicorn)
and nginx (deploy/nginx/lunxun.conf, ports and paths substituted: its ``lunxun_app`` upstream
on both gunicorns, its live upstream on the live server) as separate processes. nginx's access
log names the instance that answered each request (``upstream=``). The test process itself
never opens the database: everything goes over HTTP (and RTMP), plus boto3 to look into the
bucket and ``manage.py shell`` for the few objects a test makes itself.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests

from .helpers import Proc, free_port, tail, wait_until

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(Path(sys.executable))
VENV_BIN = Path(sys.executable).parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "lunxun.conf"
REQUIRED_ENV = ("DATABASE_URL", "REDIS_URL", "LUNXUN_S3_BUCKET", "LUNXUN_S3_ENDPOINT_URL")
# Environment of the test process that must not leak into the stack's processes.
DROPPED_ENV = (
    "DJANGO_SETTINGS_MODULE",
    "SQLITE_PATH",
    "MEDIA_ROOT",
    "DEBUG",
    "LUNXUN_TASKS_BACKEND",
    "LUNXUN_SERVE_MEDIA",
    "LUNXUN_VIDEO_CDN_DOMAIN",
)
STARTUP_SECONDS = 90
COMMAND_SECONDS = 600  # generous: migrations alone take a minute on a busy 2-core machine
# Files of the hls.js package the site does not use (it serves hls.min.js and its map only):
# compressing them was most of collectstatic's time.

TIMINGS: dict[str, float] = {}


def _missing(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"scale stack: {reason} (run through scripts/with-scale-stack.sh)")
    pytest.skip(
        f"scale stack: {reason}; run: scripts/with-scale-stack.sh .venv/bin/pytest -m scale"
    )


def _tool(name):
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")
    if not found:
        _missing(f"{name} is not installed")
    return found


class Timer:
    def __init__(self):
        self.started = time.monotonic()
        self.last = self.started

    def lap(self, step):
        now = time.monotonic()
        TIMINGS[step] = round(now - self.last, 1)
        self.last = now


def render_nginx(
    template: str, *, port, redirect_port, upstream_ports, live_port, static_root
) -> str:
    """deploy/nginx/lunxun.conf with this run's ports and paths. Each substitution must hit
    exactly as often as expected, so the example and the test cannot drift apart silently."""
    first, second = upstream_ports
    replacements = [
        ("server 127.0.0.1:8000 ", f"server 127.0.0.1:{first} ", 1),
        ("server 127.0.0.1:8001 ", f"server 127.0.0.1:{second} ", 1),
        ("server 127.0.0.1:8935;", f"server 127.0.0.1:{live_port};", 1),
        ("listen 80;", f"listen 127.0.0.1:{redirect_port};", 1),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port};", 1),
        # No TLS in the test: nginx still tells Django the request came over HTTPS, as it
        # does in production where it terminates TLS.
        (
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header X-Forwarded-Proto https;",
            1,
        ),
        ("alias /srv/lunxun/static/", f"alias {static_root}/", 2),
    ]
    text = template
    for old, new, count in replacements:
        found = text.count(old)
        assert found == count, f"{NGINX_TEMPLATE.name}: {old!r} found {found}x, expected {count}"
        text = text.replace(old, new)
    text, removed = re.subn(r"(?m)^\s*ssl_\w+\s+[^;]*;\n", "", text)
    assert removed == 4, f"{NGINX_TEMPLATE.name}: expected 4 ssl_* lines, found {removed}"
    return text


def nginx_main_conf(directory: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the temp dir
    d = directory
    return f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    # The combined format, plus the gunicorn instance that answered.
    log_format upstream '$remote_addr - $remote_user [$time_local] "$request" $status '
                        '$body_bytes_sent "$http_referer" "$http_user_agent" '
                        'upstream=$upstream_addr';
    access_log {d}/access.log upstream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/lunxun.conf;
}}
"""


class Command:
    def __init__(self, name, argv, *, env, log):
        self.name, self.log = name, log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )

    def finish(self, timeout=COMMAND_SECONDS) -> str:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"manage.py {self.name} took longer than {timeout} s:\n{tail(self.log)}"
            ) from None
        output = self.log.read_text(errors="replace")
        assert code == 0, f"manage.py {self.name} failed ({code}):\n{tail(self.log)}"
        return output


class Stack:
    """What the story talks to. ``procs`` and ``logs`` are printed when the story fails."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.commands: list[Command] = []
        self.logs: dict[str, Path] = {}
        self.env: dict[str, str] = {}
        self.seed: dict = {}

    def manage_started(self, *args, log_name=None) -> "Command":
        """``manage.py *args`` running in the background; ``.finish()`` waits and checks it."""
        name = log_name or args[0]
        log = self.workdir / f"manage-{name}.log"
        self.logs[f"manage {name}"] = log
        command = Command(name, [PYTHON, "manage.py", *args], env=self.env, log=log)
        self.commands.append(command)
        return command

    def manage(self, *args, log_name=None) -> str:
        return self.manage_started(*args, log_name=log_name).finish()

    def start(self, name, argv, *, env=None) -> Proc:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        proc = Proc(name, argv, env={**self.env, **(env or {})}, cwd=ROOT, log_path=log)
        self.procs.append(proc)
        return proc

    def gunicorn_log(self) -> str:
        """What both gunicorn instances logged."""
        return "".join(proc.log_path.read_text(errors="replace") for proc in self.gunicorns)

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.env["LUNXUN_S3_ENDPOINT_URL"],
            aws_access_key_id=self.env.get("LUNXUN_S3_ACCESS_KEY") or "x",
            aws_secret_access_key=self.env.get("LUNXUN_S3_SECRET_KEY") or "x",
            region_name=self.env.get("LUNXUN_S3_REGION") or "us-east-1",
        )

    def keys(self, prefix) -> list[str]:
        listing = self.s3().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    def log_tails(self) -> str:
        parts = []
        for name, path in self.logs.items():
            parts.append(f"----- {name} ({path}) -----\n{tail(path)}")
        return "\n".join(parts)

    def stop(self):
        for command in self.commands:
            if command.process.poll() is None:
                command.process.kill()
                command.process.wait()
        for proc in reversed(self.procs):
            proc.stop()
        # The live server's nginx runs in a session of its own: manage.py live_server stops it
        # on SIGTERM, but if that was cut short, it must not outlive the stack.
        pid_file = getattr(self, "live_root", None) and self.live_root / "nginx.pid"
        if pid_file and pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass


def _database(url: str, name: str):
    """(admin connection URL, the new database's URL) on the server of ``url``."""
    parts = urlsplit(url)
    assert parts.scheme.startswith("postgres"), f"DATABASE_URL is not PostgreSQL: {url}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, urlunsplit(parts._replace(path=f"/{name}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "scale_stack", None)
    if stack is not None and report.failed:
        item.scale_failed = True
        report.sections.append(("scale stack: process logs", stack.log_tails()))


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "scale story timings (s)")
        for step, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f}  {step}")


class Prepared:
    """What every stack of a run starts from: a migrated template database and one
    STATIC_ROOT (collectstatic hashes and compresses every file), made once."""

    def __init__(self, workdir: Path, template: str, static_root: Path):
        self.workdir, self.template, self.static_root = workdir, template, static_root


@pytest.fixture(scope="session")
def prepared():
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        _missing(f"{', '.join(missing)} not set")
    import psycopg

    timer = Timer()
    workdir = Path(tempfile.mkdtemp(prefix="lunxun-scale-prepared-"))
    os.chmod(workdir, 0o755)
    template = f"lunxun_template_{secrets.token_hex(4)}"
    admin_url, template_url = _database(os.environ["DATABASE_URL"], template)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=template_url,
        LUNXUN_VAR_DIR=str(workdir / "var"),
        STATIC_ROOT=str(workdir / "static"),
        REDIS_URL=urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/1")),
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{template}"')
    try:
        argv = [PYTHON, "manage.py"]
        collect = Command(
            "collectstatic",
            [*argv, "collectstatic", "--noinput", "-v", "0"],
            env=env,
            log=workdir / "manage-collectstatic.log",
        )
        Command(
            "migrate",
            [*argv, "migrate", "--noinput", "-v", "0"],
            env=env,
            log=workdir / "manage-migrate.log",
        ).finish()
        collect.finish()
        timer.lap("setup, once: migrate a template database + collectstatic (at once)")
        yield Prepared(workdir, template, workdir / "static")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def stack(request, prepared):
    nginx = os.environ.get("LUNXUN_NGINX") or _tool("nginx")
    for tool in ("ffmpeg", "ffprobe", "pdftotext"):
        _tool(tool)

    import psycopg

    timer = Timer()
    workdir = Path(tempfile.mkdtemp(prefix="lunxun-story-"))
    os.chmod(workdir, 0o755)
    stack = Stack(workdir)
    request.node.scale_stack = stack
    token = secrets.token_hex(4)
    admin_url, db_url = _database(os.environ["DATABASE_URL"], f"lunxun_story_{token}")
    stack.bucket = f"{os.environ['LUNXUN_S3_BUCKET']}-{token}"
    stack.endpoint = os.environ["LUNXUN_S3_ENDPOINT_URL"].rstrip("/")
    port, redirect_port = free_port(), free_port()
    gunicorn_ports = [free_port(), free_port()]
    gunicorn_port = gunicorn_ports[0]
    live_rtmp_port, live_http_port = free_port(), free_port()
    stack.origin = f"https://127.0.0.1:{port}"  # what the browser sees: nginx, over TLS
    stack.base_url = f"http://127.0.0.1:{port}"  # where the test connects (no TLS here)
    stack.redirect_url = f"http://127.0.0.1:{redirect_port}"
    # Each gunicorn instance, addressed directly (not through nginx).
    stack.instances = [f"http://127.0.0.1:{p}" for p in gunicorn_ports]
    stack.static_root = prepared.static_root
    stack.var_dir = workdir / "var"
    stack.var_dir.mkdir()
    stack.live_root = workdir / "live"
    stack.live_rtmp_url = f"rtmp://127.0.0.1:{live_rtmp_port}/live"

    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=db_url,
        LUNXUN_S3_BUCKET=stack.bucket,
        LUNXUN_VAR_DIR=str(stack.var_dir),
        STATIC_ROOT=str(stack.static_root),
        LUNXUN_SITE_URL=stack.origin,
        LUNXUN_CACHE_PREFIX=f"story-{token}",
        # Its own Redis database: other scale tests flush theirs (db 0).
        REDIS_URL=urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/1")),
        LUNXUN_RATELIMIT_IP_HEADER="HTTP_X_REAL_IP",
        # Hourly windows for the limits test_two_instances.py runs into: django-ratelimit counts
        # in fixed windows, and a burst of tries must not straddle two of them.
        LUNXUN_ACTIVATE_RATE="5/h",
        LUNXUN_PASSWORD_CHECK_RATE="5/h",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        # The live-lecture server's, given to every process of the stack: gunicorn answers its
        # callbacks with the same secret (derived from SECRET_KEY) and paths, the worker reads
        # its recordings.
        LUNXUN_LIVE_ROOT=str(stack.live_root),
        LUNXUN_LIVE_RTMP_PORT=str(live_rtmp_port),
        LUNXUN_LIVE_HTTP_PORT=str(live_http_port),
        LUNXUN_LIVE_RTMP_URL=stack.live_rtmp_url,
        LUNXUN_LIVE_CALLBACK_URL=f"http://127.0.0.1:{gunicorn_port}",
        LUNXUN_LIVE_PRESET="ultrafast",
        LUNXUN_NGINX=nginx,
    )
    stack.env = env

    with psycopg.connect(admin_url, autocommit=True) as connection:
        # A copy of the migrated template (``prepared``): this stack's own database.
        connection.execute(f'CREATE DATABASE "lunxun_story_{token}" TEMPLATE "{prepared.template}"')
    try:
        stack.manage("storage_setup")
        timer.lap("setup: database from the template + storage_setup")
        stack.seed = _seed(stack)
        timer.lap("setup: seed")

        # Two application servers behind the one nginx upstream, as a city runs them: the same
        # settings and SECRET_KEY, their own port and pid file each.
        stack.gunicorns = [
            stack.start(
                f"gunicorn-{letter}",
                [
                    str(VENV_BIN / "gunicorn"),
                    "-c",
                    str(ROOT / "deploy" / "gunicorn.conf.py"),
                    "--workers",
                    "2",
                ],
                # As docs/operations.md runs them: one bind and one pid file per instance.
                env={
                    "GUNICORN_BIND": f"127.0.0.1:{instance_port}",
                    "GUNICORN_PIDFILE": str(workdir / f"gunicorn-{letter}.pid"),
                    "GUNICORN_NAME": f"lunxun-{letter}",
                },
            )
            for letter, instance_port in zip("ab", gunicorn_ports, strict=True)
        ]
        stack.worker = stack.start(
            "rqworker",
            [
                PYTHON,
                "manage.py",
                "rqworker",
                "--job-class",
                "django_tasks_rq.Job",
                "--with-scheduler",
                "default",
            ],
        )
        stack.live = stack.start("live_server", [PYTHON, "manage.py", "live_server"])
        stack.logs["live nginx error.log"] = stack.live_root / "logs" / "error.log"
        stack.logs["live ladder.log"] = stack.live_root / "ladder.log"
        nginx_dir = workdir / "nginx"
        nginx_dir.mkdir()
        (nginx_dir / "lunxun.conf").write_text(
            render_nginx(
                NGINX_TEMPLATE.read_text(),
                port=port,
                redirect_port=redirect_port,
                upstream_ports=gunicorn_ports,
                live_port=live_http_port,
                static_root=stack.static_root,
            )
        )
        (nginx_dir / "nginx.conf").write_text(nginx_main_conf(nginx_dir))
        stack.logs["nginx error.log"] = nginx_dir / "error.log"
        stack.logs["nginx access.log"] = nginx_dir / "access.log"
        nginx_argv = [nginx, "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")]
        checked = subprocess.run(
            [*nginx_argv, "-t", "-e", str(nginx_dir / "error.log")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, f"nginx -t:\n{checked.stderr}"

        def answers(url, **headers):
            def check():
                for proc in stack.procs:
                    proc.check_alive()
                return requests.get(url, headers=headers, timeout=5).status_code == 200

            return check

        for instance in stack.instances:
            wait_until(
                f"gunicorn on {instance} to answer",
                answers(f"{instance}/login/", **{"X-Forwarded-Proto": "https"}),
                timeout=STARTUP_SECONDS,
            )

        def live_answers():
            stack.live.check_alive()
            with socket.create_connection(("127.0.0.1", live_rtmp_port), timeout=5):
                pass
            # Any answer will do: no lecture is on air yet, so there is nothing to serve.
            requests.head(f"http://127.0.0.1:{live_http_port}/live/", timeout=5)
            return True

        wait_until("the live-lecture server to answer", live_answers, timeout=STARTUP_SECONDS)
        stack.nginx = stack.start("nginx", [*nginx_argv, "-e", str(nginx_dir / "error.log")])
        wait_until("nginx to answer", answers(stack.base_url + "/login/"), timeout=30)
        timer.lap("setup: start two gunicorns, RQ worker, live server, nginx")
        stack.timer = timer
        yield stack
    finally:
        stack.stop()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "lunxun_story_{token}" WITH (FORCE)')
        _drop_bucket(stack)
        if sys.exc_info()[0] is None and not getattr(request.node, "scale_failed", False):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"scale story: logs kept in {workdir}", file=sys.stderr)


def _seed(stack) -> dict:
    import json

    script = (Path(__file__).parent / "seed.py").read_text()
    out = stack.manage("shell", "-c", script, log_name="shell-seed")
    lines = [line for line in out.splitlines() if line.startswith("SEED ")]
    assert len(lines) == 1, out
    return json.loads(lines[0][5:])


def _drop_bucket(stack):
    try:
        s3 = stack.s3()
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=stack.bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=stack.bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=stack.bucket)
    except Exception as error:  # cleanup of a throwaway endpoint
        print(f"could not remove bucket {stack.bucket}: {error}", file=sys.stderr)
