"""Settings for CreatorFlow, read from the environment only.

With no environment at all the project runs on the embedded default: a SQLite file in the
project folder and the in-memory channel layer. ``DATABASE_URL`` and ``REDIS_URL`` switch the
same code to PostgreSQL and Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production (DEBUG=0) needs a long random SECRET_KEY in the "
            "environment, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    SECRET_KEY = "creatorflow-development-only-not-secret"

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
    "creatorflow",
    "accounts",
    "inventory",
    "orders",
    "realtime",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "creatorflow.urls"
ASGI_APPLICATION = "creatorflow.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite file by default, PostgreSQL through DATABASE_URL.
# Under ASGI every thread would keep its own persistent connection; psycopg's pool with
# CONN_MAX_AGE = 0 keeps PostgreSQL's connection count bounded under load.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DATABASE_POOL_MIN", "2")),
            "max_size": int(os.environ.get("DATABASE_POOL_MAX", "20")),
            "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "3")),
        }
        # Values are bound by PostgreSQL, not quoted into the SQL text by psycopg, and a statement
        # run five times on a connection is prepared there from its next run: the order path runs
        # the same few statements for every batch, and PostgreSQL then skips parsing and planning them
        # (bench/README.md: a sixth to a quarter less of its CPU per order). "off" turns preparing off, for
        # a connection pooler that cannot keep prepared statements.
        prepare_threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")
        if prepare_threshold != "off" and not prepare_threshold.isdigit():
            raise ImproperlyConfigured(f"DATABASE_PREPARE_THRESHOLD must be a number of runs or off, not {prepare_threshold!r}")
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None if prepare_threshold == "off" else int(prepare_threshold)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait their turn
                # instead of failing with "database is locked" halfway through a transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: in-memory by default (one process), Redis through REDIS_URL.
REDIS_URL = os.environ.get("REDIS_URL", "")
# Which of channels-redis's layers carries the pushes: "pubsub" (RedisPubSubChannelLayer, Redis
# Pub/Sub: a process's subscription delivers every message of its groups as it comes) or "lists"
# (RedisChannelLayer, messages kept in Redis until read or expired, but a process reads its
# channels one message per round trip: at 100 publishes a second over 1,000 dashboards the
# pushes fell seconds behind). A tab that missed messages while its process was cut from Redis is
# made whole by the snapshot it gets on reconnect. bench/README.md compares the two.
REDIS_CHANNEL_LAYERS = {
    "lists": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
REDIS_CHANNEL_LAYER = os.environ.get("REDIS_CHANNEL_LAYER", "pubsub")
if REDIS_CHANNEL_LAYER not in REDIS_CHANNEL_LAYERS:
    raise ImproperlyConfigured(f"REDIS_CHANNEL_LAYER must be one of {', '.join(REDIS_CHANNEL_LAYERS)}, not {REDIS_CHANNEL_LAYER!r}")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": REDIS_CHANNEL_LAYERS[REDIS_CHANNEL_LAYER],
            "CONFIG": {
                # redis-py's asyncio pool refuses work past max_connections (100 by default)
                # instead of waiting: a thousand dashboards reconnecting at once would fail.
                # redis-py 8 reads with a 5 s socket timeout, the same 5 s that channels_redis
                # blocks in BZPOPMIN waiting for messages: an idle receive then times out and
                # takes its websocket down. Reads get longer than the blocking pop.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": int(os.environ.get("REDIS_MAX_CONNECTIONS", "2000")),
                        "socket_timeout": 15,
                    }
                ],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "creatorflow"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_USER_MODEL = "accounts.Creator"
# django-axes counts failed sign-ins (the login page and the admin alike) per account and per
# client address: LOGIN_FAILURE_LIMIT failures lock that account, and that address, for
# LOGIN_LOCKOUT_MINUTES; a successful sign-in clears the account's count. Passwords are never stored
# or logged (axes masks them). The address is the connection's own unless BEHIND_PROXY.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The lock lasts the stated time from the lock-out; more guesses meanwhile do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.login_locked_out"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
SERVESTATIC_USE_FINDERS = True

# Security: strict in production, driven by the environment.
SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _env_bool("BEHIND_PROXY", False) else None
if _env_bool("BEHIND_PROXY", False):
    # The load balancer appends the client's address; a client's own X-Forwarded-For is not trusted.
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = 1
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^webhooks/"]
X_FRAME_OPTIONS = "DENY"

# Webhook bodies are read raw; TikTok's deliveries are far smaller than this.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# Paths served without the browser's middleware (creatorflow.asgi.DeliveryHandler): webhooks only.
DELIVERY_PATH_PREFIXES = ("/webhooks/",)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES + 1024

CREATORFLOW = {
    "RESERVATION_TTL_HOURS": 24,
    # Shown on amounts when a seller's orders carry no currency (CreatorFlow's own webhook shape).
    "CURRENCY": os.environ.get("CREATORFLOW_CURRENCY", "USD"),
    "EXPIRE_IN_PROCESS": _env_bool("CREATORFLOW_EXPIRE_IN_PROCESS", not DATABASE_URL),
    "PUSH_INTERVAL_SECONDS": float(os.environ.get("CREATORFLOW_PUSH_INTERVAL", "0.1")),
    # The inbox applier (orders.runtime.Applier): events per batch, how long a stored event may
    # wait before any server's applier takes it as left behind by a dead process (0: never), and
    # how long a delivery waits for its batch before it is answered "queued".
    "INBOX_BATCH_MAX": int(os.environ.get("CREATORFLOW_INBOX_BATCH_MAX", "200")),
    "INBOX_ORPHAN_SECONDS": float(os.environ.get("CREATORFLOW_INBOX_ORPHAN_SECONDS", "10")),
    "INBOX_ANSWER_WITHIN_SECONDS": float(os.environ.get("CREATORFLOW_INBOX_ANSWER_WITHIN", "2")),
    # Metrics and pushes leave the committing thread: a creator's first change is published at
    # once, later ones at most once per this many seconds, on a few publishing threads per
    # process (realtime.runtime.Coalescer). 0: once per transaction, right after commit (tests).
    "PUBLISH_COALESCE_SECONDS": float(os.environ.get("CREATORFLOW_PUBLISH_COALESCE", "0.1")),
    # Sync news (the webhook stream's count, a resync's progress) is published at most once per
    # this many seconds per creator, the first at once, later news with the creator's next order
    # (alone when none comes within another interval): during a sale every order advances the
    # stream, and the sync panel and "last sync" need not move with each.
    "PUBLISH_SYNC_SECONDS": float(os.environ.get("CREATORFLOW_PUBLISH_SYNC", "2")),
    # How often each server process logs and stores its realtime figures (realtime.monitor).
    "MONITOR_REPORT_SECONDS": float(os.environ.get("CREATORFLOW_MONITOR_REPORT_SECONDS", "30")),
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "creatorflow": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # Django's own default config gives "django" a console handler and lets it propagate to the
        # root's: every access line of the development server (django.channels.server) came twice.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
