"""gunicorn for Lunxun behind nginx (deploy/nginx/lunxun.conf).

Run from the project directory: ``gunicorn -c deploy/gunicorn.conf.py``. Several instances
(on one machine or on several, all behind nginx's ``lunxun_app`` upstream) differ only in
GUNICORN_BIND, GUNICORN_PIDFILE and GUNICORN_NAME; everything else (SECRET_KEY above all, the
database, REDIS_URL, the bucket) must be the same for every instance (docs/operations.md).

Threaded workers: a request mostly waits on the database, Redis or object storage, and a slow
upload must not hold a whole process. Every figure can be set from the environment.
"""

import gc
import multiprocessing
import os


def _int(name, default):
    return int(os.environ.get(name, default))


wsgi_app = "config.wsgi:application"
# Production settings unless the environment names others (config/wsgi.py defaults the same way).
settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or "config.settings.production"
raw_env = [f"DJANGO_SETTINGS_MODULE={settings_module}"]
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Processes: one or two per core; each runs GUNICORN_THREADS requests at once.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# A worker that stops answering its arbiter for this long is restarted. With threads, the
# arbiter hears from the worker's main loop, so a long upload or download does not trip it;
# nginx's proxy timeouts bound single requests.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then, staggered, so slow leaks never add up.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# Only nginx (on this machine, unless told otherwise) may say the client came over HTTPS.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Load the application once in the arbiter; workers fork with it already imported.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"


accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%({x-real-ip}i)s"'
proc_name = os.environ.get("GUNICORN_NAME", "lunxun")
# One pid file per instance (none by default: a service manager knows the pid).
pidfile = os.environ.get("GUNICORN_PIDFILE") or None
# gunicorn's runtime control socket (gunicornc) defaults to one path per user, which every
# gunicorn on the machine would share; name one with GUNICORN_CONTROL_SOCKET to use it.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]


def pre_fork(server, worker):
    """What the arbiter loaded lives as long as the workers: frozen before each fork, the
    garbage collector's full collections in a worker never walk it (shorter pauses, and its
    pages stay shared between the workers instead of being copied when the collector touches
    them)."""
    gc.freeze()
