"""Settings, all from the environment (README has the table).

Development defaults work with no variable set. With DEBUG off the settings refuse to load with
an insecure default (no SECRET_KEY, the development key, no ALLOWED_HOSTS).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-insecure-only-for-local-development"  # noqa: S105


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
TESTING = env_bool("TESTING", False)

SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if not DEBUG:
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value when DEBUG is off. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's hosts when DEBUG is off.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "anymail",
    "accounts",
    "jobs",
    "billing",
    "prebooking",
]

MIDDLEWARE = [
    "config.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or the embedded server that `make run` / `make test` start.
# Persistent connections: a new PostgreSQL connection per request costs ~4/5 of a webhook's
# time here (FACTS.md), so keep them, with health checks to survive a database restart.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. `make run` and `make test` start an embedded PostgreSQL; "
        "or set DATABASE_URL=postgres://user:password@host:5432/dbname."
    )
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/prebookings/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# Security. With DEBUG off these are the production defaults `check --deploy` asks for.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# Email through django-anymail: EMAIL_BACKEND picks the ESP (e.g.
# anymail.backends.postmark.EmailBackend) and ANYMAIL_* variables carry its credentials.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "anymail.backends.amazon_ses.EmailBackend",
)
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and value
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Billing <billing@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
ADMINS = [("Admin", address) for address in env_list("ADMINS")]

# Stripe
STRIPE_API_KEY = env_str("STRIPE_API_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "whsec_dev" if DEBUG else "")
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)
STRIPE_WEBHOOK_MAX_BYTES = env_int("STRIPE_WEBHOOK_MAX_BYTES", 1024 * 1024)
STRIPE_API_BASE = env_str("STRIPE_API_BASE")  # a local fake in tests; Stripe's own when empty

# django-q2 on the ORM broker, in the default database (so enqueue joins our transactions).
# `retry` is the visibility timeout: a job claimed by a worker that died comes back after it.
# It must exceed `timeout`, the longest a job may run.
Q_CLUSTER = {
    "name": "default",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 120),
    "retry": env_int("Q_RETRY", 150),
    "max_attempts": 0,
    "ack_failures": True,
    "save_limit": env_int("Q_SAVE_LIMIT", 1000),
    "poll": 0.2,
    "catch_up": False,
    "label": "Task queue",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.observability.ContextFilter"}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s",
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["context"],
            "formatter": "line",
        }
    },
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},
    },
}

# Prebooking (issue 7): bookings fired at the instant a class opens.
# The timing cluster (Q_CLUSTER_NAME=timing) runs only prebooking work, so no backlog of
# webhooks or emails on the default queue can delay a firing. Its schedules fire LEAD seconds
# early (django-q2's scheduler only runs every ~30 s); the worker then sleeps until opens_at.
PREBOOKING_QUEUE = "timing"
PREBOOKING_LEAD_SECONDS = env_int("PREBOOKING_LEAD_SECONDS", 90)
PREBOOKING_RETRY_WINDOW = env_int("PREBOOKING_RETRY_WINDOW", 60)
PREBOOKING_NOT_OPEN_RETRY_SECONDS = env_int("PREBOOKING_NOT_OPEN_RETRY_SECONDS", 5)
PREBOOKING_PREPARE_SECONDS = env_int("PREBOOKING_PREPARE_SECONDS", 3)
PREBOOKING_CLAIM_AHEAD_MS = env_int("PREBOOKING_CLAIM_AHEAD_MS", 30)
# Send each burst under SCHED_FIFO when the process may (root / CAP_SYS_NICE); see firing.py.
PREBOOKING_REALTIME_SEND = env_bool("PREBOOKING_REALTIME_SEND", True)
PREBOOKING_MAX_AHEAD_DAYS = env_int("PREBOOKING_MAX_AHEAD_DAYS", 30)
PREBOOKING_MIN_AHEAD_SECONDS = env_int("PREBOOKING_MIN_AHEAD_SECONDS", 5)
PREBOOKING_MAX_PENDING = env_int("PREBOOKING_MAX_PENDING", 20)
PREBOOKING_HTTP_TIMEOUT = env_int("PREBOOKING_HTTP_TIMEOUT", 10)
PREBOOKING_STUCK_SECONDS = env_int("PREBOOKING_STUCK_SECONDS", 30)
# Providers: name -> (label, base URL, token). "demo" is the bundled demo gym (make run starts it).
PREBOOKING_DEMO_GYM_PORT = env_int("PREBOOKING_DEMO_GYM_PORT", 8765)
PREBOOKING_PROVIDERS = {
    "demo": {
        "label": "Demo gym",
        "url": env_str("PREBOOKING_DEMO_GYM_URL", f"http://127.0.0.1:{PREBOOKING_DEMO_GYM_PORT}"),
        "token": "",
    },
}
if env_str("PREBOOKING_PROVIDER_URL"):
    PREBOOKING_PROVIDERS["gym"] = {
        "label": env_str("PREBOOKING_PROVIDER_LABEL", "Gym"),
        "url": env_str("PREBOOKING_PROVIDER_URL"),
        "token": env_str("PREBOOKING_PROVIDER_TOKEN"),
    }
PREBOOKING_DEMO_GYM_ENABLED = env_bool("PREBOOKING_DEMO_GYM_ENABLED", DEBUG)
if not PREBOOKING_DEMO_GYM_ENABLED and "gym" in PREBOOKING_PROVIDERS:
    del PREBOOKING_PROVIDERS["demo"]
# The armer holds a timing worker from LEAD before opening until the retry window closes.
_PREBOOKING_TASK_SECONDS = PREBOOKING_LEAD_SECONDS + 30 + PREBOOKING_RETRY_WINDOW + 60
Q_CLUSTER["ALT_CLUSTERS"] = {
    PREBOOKING_QUEUE: {
        "workers": env_int("Q_TIMING_WORKERS", 4),
        "timeout": _PREBOOKING_TASK_SECONDS,
        "retry": _PREBOOKING_TASK_SECONDS + 30,
        "poll": 0.05,
        "max_attempts": 1,
    }
}
