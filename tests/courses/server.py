"""A real gunicorn serving the project on the test database, for tests that need real processes.

The server runs the product's own gunicorn configuration (deploy/gunicorn.conf.py) and settings
module (production, as a deployment runs it behind nginx) against the database the test process
set up: the same SQLite file (by SQLITE_PATH) or the same PostgreSQL test database (by
DATABASE_URL). Nothing about the database is relaxed: its options (WAL, IMMEDIATE transactions,
busy timeout, persistent connections) come from config/settings/base.py as in production.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "config.settings.production"
# Environment that would change the database or its options from the product's defaults.
DATABASE_ENV = ("DATABASE_URL", "SQLITE_PATH", "SQLITE_BUSY_TIMEOUT")
STARTUP_SECONDS = 90


def database_env(settings_dict) -> dict:
    """Environment that points a server process at the database behind ``settings_dict``."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return {"SQLITE_PATH": str(settings_dict["NAME"])}
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        name = quote(settings_dict["NAME"], safe="")
        return {"DATABASE_URL": f"postgres://{auth}{host}{port}/{name}"}
    raise AssertionError(f"no server environment for database engine {engine}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn with the product's configuration (deploy/gunicorn.conf.py: threaded workers,
    the application preloaded) on a free 127.0.0.1 port. ``stop()`` always, then read ``log``
    and ``access_log``.

    Requests must say they came through nginx over HTTPS (``proxy_headers``), as production
    redirects plain HTTP.
    """

    def __init__(self, *, env, log_dir, workers=4):
        self.log_path = Path(log_dir) / "gunicorn.log"
        self.access_log_path = Path(log_dir) / "access.log"
        self.workers = workers
        self.process = None
        self.port = None
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in DATABASE_ENV and not k.startswith("GUNICORN_")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            PYTHONPATH=str(ROOT),
            ALLOWED_HOSTS="127.0.0.1",
            GUNICORN_WORKERS=str(workers),
            GUNICORN_ERROR_LOG="-",
            GUNICORN_ACCESS_LOG=str(self.access_log_path),
            GUNICORN_LOG_LEVEL="info",
            **env,
        )

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"  # what the browser sees, through nginx

    @property
    def direct_url(self):
        return f"http://127.0.0.1:{self.port}"

    def proxy_headers(self):
        return {"X-Forwarded-Proto": "https", "Origin": self.url}

    @property
    def log(self) -> str:
        return _read(self.log_path)

    @property
    def access_log(self) -> str:
        return _read(self.access_log_path)

    def start(self):
        """Start and wait until Django answers; fail with the server's log if it does not."""
        for _attempt in range(3):  # the free port may be taken between choosing and binding
            self.port = free_port()
            self._spawn()
            if self._wait_ready():
                return self
            log = self.log
            self.stop()
            if "in use" not in log:
                break
        raise AssertionError(
            f"gunicorn did not start within {STARTUP_SECONDS} s; its log:\n{self.log}"
        )

    def _spawn(self):
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            f"--config={ROOT / 'deploy' / 'gunicorn.conf.py'}",
            f"--chdir={ROOT}",
            # Its default path is one for every gunicorn on the machine (bench, other tests).
            "--no-control-socket",
        ]
        self.env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self) -> bool:
        """True once a worker answers a request through Django (a GET on a POST-only URL)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        probe = requests.Session()
        probe.trust_env = False  # never through a proxy: 127.0.0.1 only
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    response = probe.get(
                        f"{self.direct_url}/progress/0/",
                        headers=self.proxy_headers(),
                        timeout=5,
                        allow_redirects=False,
                    )
                    if response.status_code == 405:
                        return True
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            return False
        finally:
            probe.close()

    def stop(self):
        """SIGTERM the master (workers finish their requests), SIGKILL the group if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _read(path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""
