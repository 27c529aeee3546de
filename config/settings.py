"""Settings, all from the environment (README has the table).

Development defaults work with no variable set. With DEBUG off the settings refuse to load with
an insecure default (no SECRET_KEY, the development key, no ALLOWED_HOSTS).
"""

from __future__ import annotations

import os
from datetime import timedelta
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

# A cache every process shares, in PostgreSQL: django-q2 keeps its cluster heartbeats here
# (the dashboard and /readyz read them from the web processes), and so do rate limits.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "django_cache",
    }
}

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
    "ack_failures": False,  # jobs.services never raises; a crash must be delivered again
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
        "django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},
    },
}

# Operations: readiness, alerts, retention
READY_MAX_BACKLOG = env_int("READY_MAX_BACKLOG", 1000)
METRICS_TOKEN = env_str("METRICS_TOKEN")  # when set, /metrics wants "Authorization: Bearer ..."
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")  # Slack-compatible incoming webhook
ALERT_WINDOW_SECONDS = env_int("ALERT_WINDOW_SECONDS", 300)  # one summary per window
JOBS_RETENTION_SUCCEEDED_HOURS = env_int("JOBS_RETENTION_SUCCEEDED_HOURS", 24)
JOBS_RETENTION_FAILED_DAYS = env_int("JOBS_RETENTION_FAILED_DAYS", 7)

# Security hardening (docs/security.md lists each threat, its defence and the test proving it).
INSTALLED_APPS += ["axes", "django_ratelimit", "csp"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "config.security.CSPMiddleware",  # django-csp's, for HTML documents only
)
# Axes last: it turns the lockout raised during authentication into the lockout page.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# Login throttling (django-axes): lock an account, and separately a client address, after
# AXES_FAILURE_LIMIT failed logins; the lock lifts AXES_COOLOFF_MINUTES after the last failure.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2"]
AXES_VERBOSE = False
# The client address behind reverse proxies: TRUSTED_PROXY_COUNT is how many proxies that
# append to X-Forwarded-For stand in front of gunicorn (0: clients connect directly). See
# config.security.client_ip; both axes and the form rate limits use it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
RATELIMIT_IP_META_KEY = "config.security.client_ip"

# Form rate limits (django-ratelimit), counted atomically in PostgreSQL so that all workers
# share them (accounts/cache.py says why not DatabaseCache). ratelimit warns (W001) about any
# backend but memcached/redis; this one is tested in tests/security/test_rate_limits.py.
CACHES["ratelimit"] = {"BACKEND": "accounts.cache.PostgresCounterCache"}
RATELIMIT_USE_CACHE = "ratelimit"
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
SIGNUP_RATE = env_str("SIGNUP_RATE", "10/h")
PASSWORD_RESET_IP_RATE = env_str("PASSWORD_RESET_IP_RATE", "10/h")
PASSWORD_RESET_RATE = env_str("PASSWORD_RESET_RATE", "3/h")  # per e-mail address

# Headers and cookies with DEBUG off are set above (SECURE_*, *_COOKIE_*); in addition:
CSRF_COOKIE_HTTPONLY = True  # no script of ours reads it: forms carry the token

# Content-Security-Policy (django-csp): only our own origin; no inline script or style, no
# framing. The pages and the admin satisfy it (tests/security/test_csp.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Secrets never reach logs, error e-mails, stored tracebacks or Sentry (config.redaction).
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.RedactingExceptionReporterFilter"
LOGGING["filters"]["redact"] = {"()": "config.redaction.RedactingFilter"}
LOGGING["filters"]["require_debug_false"] = {"()": "django.utils.log.RequireDebugFalse"}
LOGGING["handlers"]["mail_admins"] = {
    "class": "django.utils.log.AdminEmailHandler",
    "level": "ERROR",
    "filters": ["require_debug_false"],
}
for _handler in LOGGING["handlers"].values():
    _handler["filters"] = ["redact", *_handler.get("filters", [])]
# Replaces Django's default "django" logger (console + mail_admins): records still propagate to
# the root's stdout handler, once, through the redacting filter.
LOGGING["loggers"]["django"] = {"handlers": ["mail_admins"], "level": "INFO"}
# axes writes three INFO lines per failed log-in; its warnings (failure, lock-out) are enough.
LOGGING["loggers"]["axes"] = {"level": env_str("AXES_LOG_LEVEL", "WARNING")}

# Error reporting: Sentry only when SENTRY_DSN is set; no personal data, no request bodies,
# and every event redacted before it leaves. sentry-sdk 2.75 calls send_default_pii deprecated
# in favour of data_collection, but giving data_collection switches Sentry's own EventScrubber
# off; send_default_pii=False keeps it (a deprecation warning at start-up is the price).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    from config.redaction import sentry_before_send

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        send_default_pii=False,
        max_request_body_size="never",
        before_send=sentry_before_send,
        traces_sample_rate=0.0,
    )

# Fast job pickup (issue 8): our broker on the same django_q_ormq table (jobs/broker.py) claims
# due rows in id order with SKIP LOCKED and sleeps on LISTEN/NOTIFY instead of polling; `poll`
# becomes the backstop of that sleep (and bounds how long a stopping cluster waits for the
# pusher). Q_BROKER_CLASS="" goes back to django-q2's stock ORM broker (the benchmark baseline).
Q_CLUSTER["broker_class"] = env_str("Q_BROKER_CLASS", "jobs.broker.PostgresBroker") or None
Q_CLUSTER["poll"] = float(env_str("Q_POLL", "1.0" if Q_CLUSTER["broker_class"] else "0.2"))
# Throughput (bench/pickup.py): the monitor saving each success into django_q_task and pruning
# it to save_limit (a SELECT ... FOR UPDATE of up to save_limit rows per task) capped a cluster
# at ~50 jobs/s. jobs.JobAttempt already records every attempt and nothing reads those rows, so
# successes are not saved (failures still are); bulk 4 claims a few due rows per query.
Q_CLUSTER["save_limit"] = env_int("Q_SAVE_LIMIT", -1)
Q_CLUSTER["bulk"] = env_int("Q_BULK", 4 if Q_CLUSTER["broker_class"] else 1)
Q_CLUSTER["recycle"] = env_int("Q_RECYCLE", 500)  # django-q2's default

# Billing (Stripe webhooks, emails, dunning). Dunning days count from the first failed payment.
BILLING_DUNNING_REMINDER_DAYS = [
    int(day) for day in env_list("BILLING_DUNNING_REMINDER_DAYS", "3,7") if day.isdigit()
]
BILLING_DUNNING_CANCEL_DAY = env_int("BILLING_DUNNING_CANCEL_DAY", 10)
BILLING_ENTITLEMENTS_TTL = env_int("BILLING_ENTITLEMENTS_TTL", 3600)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
SITE_URL = env_str("SITE_URL", "http://localhost:8000")
STRIPE_EVENT_RETENTION_DAYS = env_int("STRIPE_EVENT_RETENTION_DAYS", 30)

# Prebooking (issue 7): bookings fired at the instant a class opens.
# The timing cluster (Q_CLUSTER_NAME=timing) runs only prebooking work, so no backlog of
# webhooks or emails on the default queue can delay a firing. Its schedules fire LEAD seconds
# early (django-q2's scheduler only runs every ~30 s); the worker then sleeps until opens_at.
PREBOOKING_QUEUE = "timing"
PREBOOKING_LEAD_SECONDS = env_int("PREBOOKING_LEAD_SECONDS", 90)
PREBOOKING_RETRY_WINDOW = env_int("PREBOOKING_RETRY_WINDOW", 60)
PREBOOKING_NOT_OPEN_RETRY_SECONDS = env_int("PREBOOKING_NOT_OPEN_RETRY_SECONDS", 5)
PREBOOKING_PREPARE_SECONDS = env_int("PREBOOKING_PREPARE_SECONDS", 3)
PREBOOKING_CLAIM_AHEAD_MS = env_int("PREBOOKING_CLAIM_AHEAD_MS", 100)
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
if not PREBOOKING_DEMO_GYM_ENABLED:
    del PREBOOKING_PROVIDERS["demo"]
# The armer holds a timing worker from LEAD before opening until the retry window closes.
_PREBOOKING_TASK_SECONDS = PREBOOKING_LEAD_SECONDS + 30 + PREBOOKING_RETRY_WINDOW + 60
Q_CLUSTER["ALT_CLUSTERS"] = {
    PREBOOKING_QUEUE: {
        "workers": env_int("Q_TIMING_WORKERS", 6),
        "timeout": _PREBOOKING_TASK_SECONDS,
        "retry": _PREBOOKING_TASK_SECONDS + 30,
        "max_attempts": 1,
    }
}

# AimHarder (issue 16): a real gym platform. Every account-level call (login, session check) goes
# to AIMHARDER_LOGIN_URL; box calls to AIMHARDER_BOX_URL with {box} = the box's slug, so a local
# fake can serve http://127.0.0.1:PORT/{box}. Development points both at the fake AimHarder
# (`manage.py fake_aimharder`, the Procfile's `aimharder:` line); no default reaches aimharder.com
# unless DEBUG is off.
AIMHARDER_FAKE_PORT = env_int("AIMHARDER_FAKE_PORT", 8766)
_AIMHARDER_FAKE = f"http://127.0.0.1:{AIMHARDER_FAKE_PORT}"
AIMHARDER_LOGIN_URL = env_str(
    "AIMHARDER_LOGIN_URL", _AIMHARDER_FAKE if DEBUG else "https://login.aimharder.com"
)
AIMHARDER_BOX_URL = env_str(
    "AIMHARDER_BOX_URL", f"{_AIMHARDER_FAKE}/{{box}}" if DEBUG else "https://{box}.aimharder.com"
)
if "{box}" not in AIMHARDER_BOX_URL:
    raise ImproperlyConfigured("AIMHARDER_BOX_URL must contain {box} (the box's slug).")
AIMHARDER_PROXY_URL = env_str("AIMHARDER_PROXY_URL")  # optional outbound proxy (403s abroad)
AIMHARDER_TIMEOUT = env_int("AIMHARDER_TIMEOUT", 10)
AIMHARDER_LINK_RATE = env_str("AIMHARDER_LINK_RATE", "10/h")  # link attempts per member
# Login, clock probing and connections start this long before the instant.
AIMHARDER_PREPARE_SECONDS = env_int("AIMHARDER_PREPARE_SECONDS", 12)
# Arrival targeting (prebooking/clock.py): aim each request this far after the gym's opening.
AIMHARDER_ARRIVAL_MARGIN_MS = env_int("AIMHARDER_ARRIVAL_MARGIN_MS", 5)
AIMHARDER_CLOCK_PROBING = env_bool("AIMHARDER_CLOCK_PROBING", True)
# The fake AimHarder's own clock skew and one-way delay (tests, demo, benchmark).
AIMHARDER_FAKE_ENABLED = env_bool("AIMHARDER_FAKE_ENABLED", DEBUG)
AIMHARDER_FAKE_SKEW_MS = env_int("AIMHARDER_FAKE_SKEW_MS", 0)
AIMHARDER_FAKE_DELAY_MS = env_int("AIMHARDER_FAKE_DELAY_MS", 0)
AIMHARDER_DEFAULT_TIME_ZONE = env_str("AIMHARDER_DEFAULT_TIME_ZONE", "Europe/Madrid")
PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS = env_int("PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS", 100)

# Linked gym accounts' passwords are encrypted at rest with Fernet (prebooking/credentials.py).
# PREBOOKING_CREDENTIALS_KEY: one or more comma-separated Fernet keys, newest first; every key
# decrypts, the first encrypts (rotation: docs/prebooking.md). Production refuses to start
# without one; development derives a key from SECRET_KEY (never valid in production).
PREBOOKING_CREDENTIALS_KEYS = env_list("PREBOOKING_CREDENTIALS_KEY")
if not PREBOOKING_CREDENTIALS_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PREBOOKING_CREDENTIALS_KEY must be set when DEBUG is off (it encrypts linked gym "
            "accounts' passwords). Generate one with: python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'"
        )
    from prebooking.credentials import derive_development_key

    PREBOOKING_CREDENTIALS_KEYS = [derive_development_key(SECRET_KEY)]
else:
    from prebooking.credentials import validate_keys

    try:
        validate_keys(PREBOOKING_CREDENTIALS_KEYS)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
