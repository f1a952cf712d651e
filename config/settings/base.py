"""Base settings, read from the environment; every default works on a fresh machine.

Profiles (see DESIGN.md): the embedded default needs no environment at all (SQLite, local
memory cache, database task queue, local media). The scale profile is switched on piece by
piece from the environment: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (cache, and background
tasks on RQ workers), ``LUNXUN_S3_BUCKET`` (media and HLS on S3-compatible object storage).
Production settings (``config.settings.production``) add the HTTPS and cookie hardening.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("LUNXUN_VAR_DIR", BASE_DIR / "var"))
# The SQLite database and local media live here; create it so a fresh clone just runs.
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    return int(os.environ.get(name, default))


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    # First: core's templates override Wagtail admin widgets (core/templates/wagtailadmin), so
    # it comes before wagtail.admin; the domain apps follow in their import order.
    "core",
    "members",
    "courses",
    "quizzes",
    "rounds",
    "certificates",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "wagtailmedia",
    "modelcluster",
    "taggit",
    "treebeard",
    "schedule",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "django_tasks_rq",
    "storages",
    "csp",
    "axes",
    "auditlog",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]

MIDDLEWARE = [
    # First: a POST to a view marked @lean_path (a progress report, a quiz submit: they
    # authenticate by a token in their body, never by a cookie) is answered through the short
    # chain LUNXUN_LEAN_MIDDLEWARE below, and the rest of this stack never runs (core/lean.py).
    "core.lean.LeanPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (compressed, cached forever when hashed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.csp.CSPMiddleware",
    "core.middleware.PrivatePagesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.AuditlogMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by authenticate() into a response.
    "axes.middleware.AxesMiddleware",
]

# What a lean-path response still needs, in this order (core/lean.py): the security headers
# and the SSL redirect, the Content-Security-Policy (built once: a lean answer uses no
# nonce), the private cache headers, the member's language (the answer's words), the frame
# denial. Not the session, the user, the messages, CSRF (a lean view authorises by its token,
# never by a cookie: core/lean.py says why), the audit log's per-request actor (lean views
# log with audit_event themselves), Wagtail's redirects or django-axes.
LUNXUN_LEAN_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.lean.LeanCSPMiddleware",
    "core.middleware.PrivatePagesMiddleware",
    "core.lean.LeanLocaleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "members.context_processors.roles",
                "core.display.display",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default. WAL lets readers run beside the writer; IMMEDIATE transactions
# take the write lock at BEGIN, so concurrent writers queue on the busy timeout instead of failing
# with "database is locked" when a read transaction tries to upgrade.
SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", VAR_DIR / "lunxun.sqlite3"))
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA foreign_keys=ON;"
        "PRAGMA cache_size=-65536;"
    ),
}

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's cursors bind parameters in the client and never prepare. The progress
        # report's two statements (courses/progress_sql.py) run on a cursor that binds on the
        # server, and psycopg prepares a statement on its Nth run on a connection. Behind a
        # pooler in transaction mode that does not keep prepared statements (PgBouncer before
        # 1.21, or without max_prepared_statements), set LUNXUN_PG_PREPARE_THRESHOLD=0.
        threshold = env_int("LUNXUN_PG_PREPARE_THRESHOLD", 2)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = threshold or None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": SQLITE_OPTIONS,
            # Keep connections: opening one (and running the PRAGMAs) per request was a fifth
            # of a progress report's cost.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and background work ------------------------------------------------------------
# REDIS_URL switches both the cache (shared by every web process: rate limits, sessions' lockout
# counters) and background tasks (RQ workers: `manage.py rqworker --job-class
# django_tasks_rq.Job --with-scheduler default`). The task code is the same in both profiles.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("LUNXUN_CACHE_PREFIX", "lunxun"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TASKS_BACKEND = os.environ.get("LUNXUN_TASKS_BACKEND", "rq" if REDIS_URL else "database")
if TASKS_BACKEND == "rq":
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
RQ_QUEUES = {
    "default": {
        "URL": REDIS_URL or "redis://127.0.0.1:6379/0",
        # A long transcode or a city's certificates must not be cut off.
        "DEFAULT_TIMEOUT": env_int("LUNXUN_TASK_TIMEOUT", 6 * 3600),
    }
}
RQ_SHOW_ADMIN_LINK = False

# --- Authentication -------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked account before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "members.backends.PhoneOrUsernameBackend",
]
LOGIN_URL = "members:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {
        "NAME": "core.validators.CharacterClassValidator",
        "OPTIONS": {"min_classes": env_int("PASSWORD_MIN_CLASSES", 3)},
    },
]

# Lock by account, never by address: a whole branch shares one IP at a site PC.
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30))
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "members.backends.axes_username"
AXES_LOCKOUT_CALLABLE = "members.views.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False
SILENCED_SYSTEM_CHECKS = [
    # Deliberate: members at a remote-education site share one address, so an address in the
    # lockout key would let one person lock out a village. Accounts are locked, not addresses.
    "axes.W006",
]

# Idle timeout: core.middleware.SessionLifetimeMiddleware renews the session (and cookie)
# at most every SESSION_REFRESH_SECONDS, so it expires after this much idleness.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30) * 60
SESSION_REFRESH_SECONDS = 60
# Absolute limit, enforced by core.middleware.SessionLifetimeMiddleware.
SESSION_MAX_AGE = env_int("SESSION_MAX_HOURS", 12) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
WAGTAIL_I18N_ENABLED = False
WAGTAILADMIN_PERMITTED_LANGUAGES = LANGUAGES

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise looks here before collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Two stores. "default" is private: video sources, certificate PDFs, images; it is read through
# views that check who asks. "video" is public: the HLS ladder, MP4 fallback and posters that
# players fetch directly (from object storage or a CDN in the scale profile, never via Django).
LUNXUN_S3_BUCKET = os.environ.get("LUNXUN_S3_BUCKET", "")
if LUNXUN_S3_BUCKET:
    _s3 = {
        "bucket_name": LUNXUN_S3_BUCKET,
        "endpoint_url": os.environ.get("LUNXUN_S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("LUNXUN_S3_REGION") or None,
        "access_key": os.environ.get("LUNXUN_S3_ACCESS_KEY") or None,
        "secret_key": os.environ.get("LUNXUN_S3_SECRET_KEY") or None,
        "addressing_style": os.environ.get("LUNXUN_S3_ADDRESSING_STYLE", "path"),
        "file_overwrite": False,
    }
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **_s3,
                "location": "private",
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": env_int("LUNXUN_S3_URL_SECONDS", 600),
            },
        },
        "video": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **_s3,
                "location": "public",
                "default_acl": "public-read",
                # Playlists name their segments relatively, so URLs must not be signed.
                "querystring_auth": False,
                "custom_domain": os.environ.get("LUNXUN_VIDEO_CDN_DOMAIN") or None,
                "url_protocol": os.environ.get("LUNXUN_VIDEO_CDN_PROTOCOL", "https:"),
                "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            },
        },
        "staticfiles": {
            "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        },
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "video": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
# What the embedded default serves from MEDIA_ROOT itself (behind nginx, nginx does the same;
# see README): the public video outputs and Wagtail image renditions, nothing else. Sources and
# certificate PDFs are only reachable through the views that check who asks.
LUNXUN_PUBLIC_MEDIA_PREFIXES = ("videos/hls/", "images/")
# Roster uploads are parsed in memory and never written to MEDIA_ROOT.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000

# --- Wagtail ----------------------------------------------------------------------------------
WAGTAIL_SITE_NAME = "轮训 Lunxun"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["pdf", "docx", "doc", "xlsx", "pptx", "txt"]
# Content checks on every image and document upload (courses.admin_forms, core.uploads).
WAGTAILIMAGES_IMAGE_FORM_BASE = "courses.admin_forms.ImageForm"
WAGTAILDOCS_DOCUMENT_FORM_BASE = "courses.admin_forms.DocumentForm"
# Never "svg": an SVG is a web page that can carry script.
WAGTAILIMAGES_EXTENSIONS = ["avif", "gif", "jpg", "jpeg", "png", "webp"]
WAGTAILIMAGES_MAX_UPLOAD_SIZE = env_int("LUNXUN_IMAGE_MAX_BYTES", 10 * 1024 * 1024)
# Documents always go through Wagtail's serve view (login, collection privacy), whose response
# carries CSP "default-src 'none'", nosniff, and attachment for everything but PDF.
WAGTAILDOCS_SERVE_METHOD = "serve_view"
WAGTAILDOCS_INLINE_CONTENT_TYPES = ["application/pdf"]
WAGTAILDOCS_BLOCK_EMBEDDED_CONTENT = True
LUNXUN_DOCUMENT_MAX_BYTES = env_int("LUNXUN_DOCUMENT_MAX_BYTES", 50 * 1024 * 1024)
LUNXUN_CERTIFICATE_IMAGE_MAX_BYTES = env_int("LUNXUN_CERTIFICATE_IMAGE_MAX_BYTES", 2 * 1024 * 1024)

# --- Lunxun -----------------------------------------------------------------------------------
# Largest roster or organisation file accepted for import.
LUNXUN_IMPORT_MAX_BYTES = env_int("LUNXUN_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
LUNXUN_IMPORT_MAX_ROWS = env_int("LUNXUN_IMPORT_MAX_ROWS", 50000)
# One-time activation codes handed to imported members on a printed slip.
LUNXUN_ACTIVATION_CODE_DAYS = env_int("LUNXUN_ACTIVATION_CODE_DAYS", 30)
LUNXUN_ACTIVATION_MAX_FAILURES = env_int("LUNXUN_ACTIVATION_MAX_FAILURES", 5)

# What a backup's manifest counts and a restore checks, besides the user model (core.backup):
# the rows that matter most, one model of each domain app.
LUNXUN_BACKUP_COUNTED_MODELS = [
    "members.Member",
    "courses.LessonProgress",
    "rounds.Attendance",
    "certificates.Certificate",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Their debug lines quote whole requests (an SMS gateway's: members' numbers,
        # verification codes), whatever LOG_LEVEL says.
        "tencentcloud_sdk_common": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

LUNXUN_ROLE_LABELS = {
    "trainer": _("Trainer"),
    "secretary": _("Branch secretary"),
    "operator": _("Site operator"),
}

# --- Courses and video ----------------------------------------------------------------------------
WAGTAILMEDIA = {
    "MEDIA_MODEL": "courses.LessonVideo",
    "MEDIA_FORM_BASE": "courses.admin_forms.LessonVideoForm",
}
# One 学时 (study hour) is this many minutes of study unless the deployment says otherwise.
LUNXUN_MINUTES_PER_STUDY_HOUR = env_int("LUNXUN_MINUTES_PER_STUDY_HOUR", 45)
# A lesson is complete when this share of its duration has been watched (union of seconds).
LUNXUN_COMPLETION_THRESHOLD = float(os.environ.get("LUNXUN_COMPLETION_THRESHOLD", "0.9"))
# The player keeps 1x speed and refuses seeking past the furthest point watched.
LUNXUN_FIXED_PLAYBACK_SPEED = env_bool("LUNXUN_FIXED_PLAYBACK_SPEED", True)
LUNXUN_BLOCK_SEEK_AHEAD = env_bool("LUNXUN_BLOCK_SEEK_AHEAD", True)
# Across all of a member's lessons, the server credits at most the wall-clock time that has
# passed on the member's clock, times this speed.
LUNXUN_MAX_PLAYBACK_SPEED = float(os.environ.get("LUNXUN_MAX_PLAYBACK_SPEED", "1.0"))
LUNXUN_PROGRESS_REPORT_SECONDS = env_int("LUNXUN_PROGRESS_REPORT_SECONDS", 15)
# Video uploads.
LUNXUN_VIDEO_MAX_BYTES = env_int("LUNXUN_VIDEO_MAX_BYTES", 4 * 1024**3)
# A lesson video's caption file (WebVTT or SRT), checked by courses.captions.
LUNXUN_CAPTIONS_MAX_BYTES = env_int("LUNXUN_CAPTIONS_MAX_BYTES", 1024 * 1024)
LUNXUN_VIDEO_STALE_MINUTES = env_int("LUNXUN_VIDEO_STALE_MINUTES", 120)
# Empty: the tuned per-rung x264 settings (courses.video.TUNED_ENCODING); a preset name puts
# that preset on every rung instead.
LUNXUN_FFMPEG_PRESET = os.environ.get("LUNXUN_FFMPEG_PRESET", "")
# The embedded default serves MEDIA_ROOT itself; the scale profile serves it from storage/CDN.
LUNXUN_SERVE_MEDIA = env_bool("LUNXUN_SERVE_MEDIA", not LUNXUN_S3_BUCKET)
# Live lectures (courses.live): nginx's RTMP module, started with the site. The lecture hall
# pushes RTMP to LUNXUN_LIVE_RTMP_URL with the lecture's stream key; nginx asks Django
# (LUNXUN_LIVE_CALLBACK_URL, with LUNXUN_LIVE_CALLBACK_SECRET) whether the key is the lecture's
# current one, runs ffmpeg to make the live HLS ladder under LUNXUN_LIVE_ROOT/hls and records
# the push under LUNXUN_LIVE_ROOT/recordings. Players fetch the ladder from LUNXUN_LIVE_HLS_URL
# (the embedded default serves it itself; behind nginx, nginx proxies /live/ to the live server).
LUNXUN_LIVE_ROOT = Path(os.environ.get("LUNXUN_LIVE_ROOT", VAR_DIR / "live"))
LUNXUN_LIVE_RTMP_PORT = env_int("LUNXUN_LIVE_RTMP_PORT", 1935)
LUNXUN_LIVE_HTTP_PORT = env_int("LUNXUN_LIVE_HTTP_PORT", 8935)
# Where the hall pushes to, as the trainer is told (the city's public name in production).
LUNXUN_LIVE_RTMP_URL = os.environ.get(
    "LUNXUN_LIVE_RTMP_URL", f"rtmp://127.0.0.1:{LUNXUN_LIVE_RTMP_PORT}/live"
)
LUNXUN_LIVE_HLS_URL = os.environ.get("LUNXUN_LIVE_HLS_URL", "/live/")
LUNXUN_LIVE_CALLBACK_URL = os.environ.get("LUNXUN_LIVE_CALLBACK_URL", "http://127.0.0.1:8000")
# Unset: derived from SECRET_KEY (the live server is configured from the same settings).
LUNXUN_LIVE_CALLBACK_SECRET = os.environ.get("LUNXUN_LIVE_CALLBACK_SECRET", "")
# A push gone this long ends the lecture (the recording then becomes the lesson's video).
LUNXUN_LIVE_GRACE_MINUTES = env_int("LUNXUN_LIVE_GRACE_MINUTES", 15)
LUNXUN_LIVE_PRESET = os.environ.get("LUNXUN_LIVE_PRESET", "veryfast")
LUNXUN_NGINX = os.environ.get("LUNXUN_NGINX", "")
# hls.js from the npm registry: `make` copies the one build the player loads here.
STATICFILES_DIRS += [("vendor/hls", BASE_DIR / "node_modules" / ".vendor" / "hls")]
# qrcode-generator and jsQR: the site terminal draws check-in codes and reads personal codes
# offline (rounds/terminal), copied the same way.
STATICFILES_DIRS += [
    ("vendor/qrcode", BASE_DIR / "node_modules" / ".vendor" / "qrcode"),
    ("vendor/jsqr", BASE_DIR / "node_modules" / ".vendor" / "jsqr"),
]

# --- Rounds ----------------------------------------------------------------------------------
# Check-in QR codes rotate every LUNXUN_QR_ROTATE_SECONDS; a code stays good for
# LUNXUN_QR_GRACE_SECONDS after its successor appears (slow phones, slow links).
LUNXUN_QR_ROTATE_SECONDS = env_int("LUNXUN_QR_ROTATE_SECONDS", 15)
LUNXUN_QR_GRACE_SECONDS = env_int("LUNXUN_QR_GRACE_SECONDS", 2)
# How long after scanning a code a member may finish logging in and still be checked in.
LUNXUN_QR_LOGIN_MINUTES = env_int("LUNXUN_QR_LOGIN_MINUTES", 5)
# Check-in opens this long before a sitting starts and stays open this long after it ends.
LUNXUN_CHECKIN_GRACE_MINUTES = env_int("LUNXUN_CHECKIN_GRACE_MINUTES", 30)
# A check-in this many minutes after a sitting starts is recorded as late.
LUNXUN_LATE_MINUTES = env_int("LUNXUN_LATE_MINUTES", 15)
# Site terminals (rounds/terminals.py): a terminal downloads the sittings of the coming
# LUNXUN_TERMINAL_DAYS_AHEAD days; what it recorded offline is accepted until
# LUNXUN_TERMINAL_SYNC_DAYS after the sitting ends ("too late" after that); one user sends at
# most LUNXUN_TERMINAL_SYNC_RATE syncs.
LUNXUN_TERMINAL_DAYS_AHEAD = env_int("LUNXUN_TERMINAL_DAYS_AHEAD", 7)
LUNXUN_TERMINAL_SYNC_DAYS = env_int("LUNXUN_TERMINAL_SYNC_DAYS", 7)
LUNXUN_TERMINAL_SYNC_RATE = os.environ.get("LUNXUN_TERMINAL_SYNC_RATE", "60/m")
# Days between a round closing and its make-up deadline, when planned from the yearly calendar.
LUNXUN_MAKEUP_DAYS = env_int("LUNXUN_MAKEUP_DAYS", 30)
# Yearly study-hours requirement (学时) by member position; positions not listed use "member".
LUNXUN_YEARLY_HOURS = {
    "member": env_int("LUNXUN_YEARLY_HOURS_MEMBER", 32),
    "secretary": env_int("LUNXUN_YEARLY_HOURS_SECRETARY", 56),
    "deputy_secretary": env_int("LUNXUN_YEARLY_HOURS_DEPUTY_SECRETARY", 56),
    "committee": env_int("LUNXUN_YEARLY_HOURS_COMMITTEE", 56),
}
# Reminders: automatic ones go out this many days before a deadline; nothing is sent between
# the quiet hours (local time, start inclusive, end exclusive).
LUNXUN_REMINDER_DAYS_BEFORE = env_int("LUNXUN_REMINDER_DAYS_BEFORE", 3)
LUNXUN_QUIET_HOURS = (
    env_int("LUNXUN_QUIET_HOURS_START", 21),
    env_int("LUNXUN_QUIET_HOURS_END", 8),
)
# Text messages go through a pluggable backend: a dotted path to a class with
# send_messages(messages) -> int. The console backend prints them.
LUNXUN_SMS_BACKEND = os.environ.get("LUNXUN_SMS_BACKEND", "core.sms.ConsoleBackend")
# The provider backends (core.sms_providers.AliyunSmsBackend, .TencentSmsBackend; see
# docs/settings.md). Providers send only approved templates: LUNXUN_SMS_TEMPLATE_<PURPOSE> names
# the template of each purpose in core.sms.PURPOSES (e.g. LUNXUN_SMS_TEMPLATE_REMINDER), and
# LUNXUN_SMS_TEMPLATE_<PURPOSE>_PARAMS, comma-separated, which parameters it takes and in what
# order (Tencent's {1}, {2}...) [all of the purpose's, in PURPOSES's order]. A system check names
# whatever the selected backend still misses.
LUNXUN_SMS_ALIYUN_ACCESS_KEY_ID = os.environ.get("LUNXUN_SMS_ALIYUN_ACCESS_KEY_ID", "")
LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET = os.environ.get("LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET", "")
LUNXUN_SMS_ALIYUN_SIGN_NAME = os.environ.get("LUNXUN_SMS_ALIYUN_SIGN_NAME", "")
LUNXUN_SMS_ALIYUN_REGION = os.environ.get("LUNXUN_SMS_ALIYUN_REGION", "cn-hangzhou")
LUNXUN_SMS_ALIYUN_ENDPOINT = os.environ.get("LUNXUN_SMS_ALIYUN_ENDPOINT", "dysmsapi.aliyuncs.com")
LUNXUN_SMS_TENCENT_SECRET_ID = os.environ.get("LUNXUN_SMS_TENCENT_SECRET_ID", "")
LUNXUN_SMS_TENCENT_SECRET_KEY = os.environ.get("LUNXUN_SMS_TENCENT_SECRET_KEY", "")
LUNXUN_SMS_TENCENT_SDK_APP_ID = os.environ.get("LUNXUN_SMS_TENCENT_SDK_APP_ID", "")
LUNXUN_SMS_TENCENT_SIGN_NAME = os.environ.get("LUNXUN_SMS_TENCENT_SIGN_NAME", "")
LUNXUN_SMS_TENCENT_REGION = os.environ.get("LUNXUN_SMS_TENCENT_REGION", "ap-guangzhou")
LUNXUN_SMS_TENCENT_ENDPOINT = os.environ.get(
    "LUNXUN_SMS_TENCENT_ENDPOINT", "sms.tencentcloudapi.com"
)
# Seconds to wait for the gateway to accept a connection, then for its answer.
LUNXUN_SMS_CONNECT_TIMEOUT = env_int("LUNXUN_SMS_CONNECT_TIMEOUT", 5)
LUNXUN_SMS_READ_TIMEOUT = env_int("LUNXUN_SMS_READ_TIMEOUT", 10)
_SMS_TEMPLATE = "LUNXUN_SMS_TEMPLATE_"
LUNXUN_SMS_TEMPLATES = {
    name.removeprefix(_SMS_TEMPLATE).lower(): value.strip()
    for name, value in os.environ.items()
    if name.startswith(_SMS_TEMPLATE) and not name.endswith("_PARAMS") and value.strip()
}
LUNXUN_SMS_TEMPLATE_PARAMS = {
    name.removeprefix(_SMS_TEMPLATE).removesuffix("_PARAMS").lower(): [
        param.strip() for param in value.split(",") if param.strip()
    ]
    for name, value in os.environ.items()
    if name.startswith(_SMS_TEMPLATE) and name.endswith("_PARAMS")
}
LUNXUN_SITE_URL = os.environ.get("LUNXUN_SITE_URL", "http://127.0.0.1:8000")

# --- Email -----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "lunxun@localhost")

# --- Certificates ----------------------------------------------------------------------------
# Number patterns: {year}, {quarter}, {round} (the round's id) and {seq}. A series is the
# pattern without {seq}: with the default, all rounds of one quarter share one series.
LUNXUN_CERTIFICATE_NUMBER = os.environ.get(
    "LUNXUN_CERTIFICATE_NUMBER", "{year}-Q{quarter}-{seq:06d}"
)
LUNXUN_STATEMENT_NUMBER = os.environ.get("LUNXUN_STATEMENT_NUMBER", "{year}-XS-{seq:06d}")
# The public verification page: requests per address (django-ratelimit rate). Behind a proxy,
# set LUNXUN_RATELIMIT_IP_HEADER (e.g. HTTP_X_REAL_IP) so visitors are told apart.
LUNXUN_VERIFY_RATE = os.environ.get("LUNXUN_VERIFY_RATE", "30/m")
# Behind a proxy, the header carrying the client's address (e.g. HTTP_X_REAL_IP, which the
# example nginx configuration sets). Rate limits, the audit log and django-axes all read the
# address through core.audit.client_ip; without the header they use the connection's.
LUNXUN_RATELIMIT_IP_HEADER = os.environ.get("LUNXUN_RATELIMIT_IP_HEADER", "")
RATELIMIT_IP_META_KEY = "core.ratelimits.client_address"
AXES_CLIENT_IP_CALLABLE = "core.audit.client_ip"
# Login attempts per client address (accounts are locked separately by django-axes), and
# one-click reminder actions per user.
LUNXUN_LOGIN_RATE = os.environ.get("LUNXUN_LOGIN_RATE", "60/m")
# Tries of the activation page (a code from a slip) per client address: a site PC where a
# room activates one after another stays well below it; guessing codes for many numbers does not.
LUNXUN_ACTIVATE_RATE = os.environ.get("LUNXUN_ACTIVATE_RATE", "20/m")
# Codes sent by SMS (log in, activate, reset a password: members.sms_codes): how long one lasts,
# and how many wrong tries burn it.
LUNXUN_SMS_CODE_MINUTES = env_int("LUNXUN_SMS_CODE_MINUTES", 5)
LUNXUN_SMS_CODE_MAX_FAILURES = env_int("LUNXUN_SMS_CODE_MAX_FAILURES", 5)
# Codes sent to one number (django-ratelimit rates: both hold), whether or not it is registered,
# and asked for from one address (a site PC serves a room: generous), and codes checked per
# address.
LUNXUN_SMS_SEND_RATE_PHONE = os.environ.get("LUNXUN_SMS_SEND_RATE_PHONE", "1/m")
LUNXUN_SMS_SEND_RATE_PHONE_HOURLY = os.environ.get("LUNXUN_SMS_SEND_RATE_PHONE_HOURLY", "5/h")
LUNXUN_SMS_SEND_RATE_ADDRESS = os.environ.get("LUNXUN_SMS_SEND_RATE_ADDRESS", "60/h")
LUNXUN_SMS_CHECK_RATE = os.environ.get("LUNXUN_SMS_CHECK_RATE", "20/m")
# Wrong current passwords on the password change page, per user (a stolen session cannot guess).
LUNXUN_PASSWORD_CHECK_RATE = os.environ.get("LUNXUN_PASSWORD_CHECK_RATE", "5/15m")
LUNXUN_REMIND_RATE = os.environ.get("LUNXUN_REMIND_RATE", "10/h")

# --- Content Security Policy ----------------------------------------------------------------
from .csp import *  # noqa: E402, F403
