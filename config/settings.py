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


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_pairs(name: str, default: str = "") -> dict[str, str]:
    """`a:1,b:2` as {"a": "1", "b": "2"}, in the order given."""
    pairs = {}
    for item in env_list(name, default):
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name} must be name:value pairs, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


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
    "django_tasks",
    "anymail",
    "accounts",
    "outbox",
    "jobs",
    "mail",
    "billing",
    "prebooking",
    "devgyms",
    "ops",
    "axes",
    "django_ratelimit",
    "csp",
]

MIDDLEWARE = [
    "core.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.security.CSPMiddleware",  # django-csp's, for HTML documents only
    # Stripe's webhooks are answered here: the rest (sessions, CSRF, auth, messages, lockout)
    # has nothing to do for them (billing/middleware.py).
    "billing.middleware.WebhookMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns the lockout raised during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
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
# Persistent connections: opening a PostgreSQL connection costs more than a webhook's whole
# ack, so keep them, with health checks to survive a database restart.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set and no `make run` is up (manage.py uses its embedded "
        "PostgreSQL under DATA_DIR). Start `make run`, or run the command as "
        '`make manage ARGS="..."`, or set DATABASE_URL=postgres://user:password@host:5432/dbname.'
    )
# Persistent connections. Health checks are off by default: they cost a `SELECT 1` round trip
# at the start of every request (a third of the webhook's database work, bench/cost.py). A
# connection broken by a database restart fails one request per process (the webhook answers
# 503 and Stripe retries) and Django then drops it; CONN_HEALTH_CHECKS=1 trades the round trip
# for never failing that request.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 600),
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", False),
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))
# Server-side binding: psycopg sends parameters apart from the SQL and prepares a statement a
# connection runs 5 times (prepare_threshold), so PostgreSQL parses and plans the webhook's
# ingest, the workers' finish and every hot ORM query once per connection, not per call.
# Behind a transaction-pooling PgBouncer older than 1.21 set DB_SERVER_SIDE_BINDING=0.
DATABASES["default"]["OPTIONS"].setdefault(
    "server_side_binding", env_bool("DB_SERVER_SIDE_BINDING", True)
)
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
FORMAT_MODULE_PATH = ["config.formats"]  # times to the second (config/formats/en/formats.py)

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
# In development mail is kept in the database and listed under the admin (outbox app).
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "outbox.backends.EmailBackend" if DEBUG else "anymail.backends.amazon_ses.EmailBackend",
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
# The event destination's signing secret(s) for thin events (/billing/webhooks/stripe/thin/).
STRIPE_THIN_WEBHOOK_SECRET = env_str("STRIPE_THIN_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")  # a local fake in tests; Stripe's own when empty

# A cache every process shares, in PostgreSQL: django-q2 keeps its cluster heartbeats here
# (the dashboard and /readyz read them from the web processes), and so do rate limits.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "django_cache",
    },
    # Form rate limits (django-ratelimit), counted atomically in PostgreSQL so that all workers
    # share them (accounts/cache.py says why not DatabaseCache).
    "ratelimit": {"BACKEND": "accounts.cache.PostgresCounterCache"},
}

# Every handler redacts secrets first (core.redaction).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "core.redaction.RedactingFilter"},
        "context": {"()": "core.observability.ContextFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        # A refused webhook is logged once, by billing.views with its reason, not again by Django.
        "quiet_webhook_refusals": {"()": "billing.middleware.QuietWebhookRefusals"},
        # A degraded /readyz is logged once per change, by ops.views with its reasons.
        "quiet_readiness_probes": {"()": "ops.health.QuietReadinessProbes"},
    },
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s",
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["redact", "context"],
            "formatter": "line",
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["redact", "require_debug_false"],
        },
    },
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's default "django" logger (console + mail_admins): records still
        # propagate to the root's stdout handler, once.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.request": {"filters": ["quiet_webhook_refusals", "quiet_readiness_probes"]},
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},
        # The jobs layer logs each attempt's outcome (jobs.services); django-tasks' own receivers
        # of its signals would log every task twice more (started, finished).
        "django_tasks": {"level": env_str("TASKS_LOG_LEVEL", "CRITICAL")},
        # axes writes three INFO lines per failed log-in; its warnings (failure, lock-out) suffice.
        "axes": {"level": env_str("AXES_LOG_LEVEL", "WARNING")},
    },
}

# Operations: readiness, alerts, retention
READY_MAX_BACKLOG = env_int("READY_MAX_BACKLOG", 1000)
# "Replay / discard / resolve all matching this filter" acts on at most this many rows at once.
CONSOLE_BULK_CAP = env_int("CONSOLE_BULK_CAP", 1000)
# /readyz fails for a queue whose work has been due this long with no cluster heartbeat as long.
READY_WORKER_STALE_SECONDS = env_int("READY_WORKER_STALE_SECONDS", 5)
METRICS_TOKEN = env_str("METRICS_TOKEN")  # when set, /metrics wants "Authorization: Bearer ..."
# /metrics shows queue depths, event counts and failure rates: in production it needs a token
# unless the deployment says out loud that it is public (e.g. only reachable on a private network).
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL")  # Slack-compatible incoming webhook
ALERT_WINDOW_SECONDS = env_int("ALERT_WINDOW_SECONDS", 300)  # one summary per window
JOBS_RETENTION_SUCCEEDED_HOURS = env_int("JOBS_RETENTION_SUCCEEDED_HOURS", 24)
JOBS_RETENTION_FAILED_DAYS = env_int("JOBS_RETENTION_FAILED_DAYS", 7)

# Security hardening (docs/security.md lists each threat, its defence and the test proving it).

# Login throttling (django-axes): lock the (account, address) pair after AXES_FAILURE_LIMIT
# failed logins, so nobody can lock out an account they do not own from their own address; the
# lock lifts AXES_COOLOFF_MINUTES after the failure that set it (attempts during it are not
# counted). An address trying many accounts is slowed by LOGIN_IP_RATE instead (docs/security.md).
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
LOGIN_IP_RATE = env_str("LOGIN_IP_RATE", "20/m")  # log-in POSTs per address, any account
# Failed log-ins of one account from every address; past it, browsers that never signed in to
# it get LOGIN_ACCOUNT_SLOW_RATE attempts together, known ones are not slowed (docs/security.md).
LOGIN_ACCOUNT_FAILURE_RATE = env_str("LOGIN_ACCOUNT_FAILURE_RATE", "50/h")
LOGIN_ACCOUNT_SLOW_RATE = env_str("LOGIN_ACCOUNT_SLOW_RATE", "2/m")
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password", "password1", "password2"]
AXES_VERBOSE = False
# The client address behind reverse proxies: TRUSTED_PROXY_COUNT is how many proxies that
# append to X-Forwarded-For stand in front of the web server (0: clients connect directly). See
# core.security.client_ip; both axes and the form rate limits use it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "core.security.client_ip"
RATELIMIT_IP_META_KEY = "core.security.client_ip"

# Form rate limits use the "ratelimit" cache above. ratelimit warns (W001) about any backend
# but memcached/redis; this one is tested in tests/security/test_rate_limits.py.
RATELIMIT_USE_CACHE = "ratelimit"
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
SIGNUP_RATE = env_str("SIGNUP_RATE", "10/h")
PASSWORD_RESET_IP_RATE = env_str("PASSWORD_RESET_IP_RATE", "10/h")
# Mails to one address from sign-up and password reset together (case-folded, trimmed).
MAIL_ADDRESS_RATE = env_str("MAIL_ADDRESS_RATE", "3/h")

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
        # Subscribe, top up and manage answer with a redirect to Stripe's hosted pages, and
        # browsers apply form-action to where a form's answer redirects.
        "form-action": ["'self'", "https://checkout.stripe.com", "https://billing.stripe.com"],
        "frame-ancestors": ["'none'"],
    }
}

# Secrets never reach logs, error e-mails, stored tracebacks or Sentry (core.redaction).
DEFAULT_EXCEPTION_REPORTER = "core.error_reports.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.error_reports.RedactingExceptionReporterFilter"

# Error reporting: Sentry only when SENTRY_DSN is set; no personal data, no request bodies,
# and every event redacted before it leaves. sentry-sdk 2.75 calls send_default_pii deprecated
# in favour of data_collection, but giving data_collection switches Sentry's own EventScrubber
# off; send_default_pii=False keeps it (a deprecation warning at start-up is the price).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    from core.redaction import sentry_before_send

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        send_default_pii=False,
        max_request_body_size="never",
        before_send=sentry_before_send,
        traces_sample_rate=0.0,
    )

# Billing (Stripe webhooks, emails, dunning). Dunning days count from the first failed payment.
BILLING_DUNNING_REMINDER_DAYS = [
    int(day) for day in env_list("BILLING_DUNNING_REMINDER_DAYS", "3,7") if day.isdigit()
]
BILLING_DUNNING_CANCEL_DAY = env_int("BILLING_DUNNING_CANCEL_DAY", 10)
BILLING_ENTITLEMENTS_TTL = env_int("BILLING_ENTITLEMENTS_TTL", 3600)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
# Handlers re-read each event's object from the API and apply its current state (dj-stripe's
# way): order never matters, at one API call per event. Off: the event's copy, by watermark.
STRIPE_REFETCH_OBJECTS = env_bool("STRIPE_REFETCH_OBJECTS", False)
if STRIPE_REFETCH_OBJECTS and not STRIPE_API_KEY:
    raise ImproperlyConfigured(
        "STRIPE_REFETCH_OBJECTS=1 needs STRIPE_API_KEY: without it no event could be applied."
    )
# The web's port, which every process derives its defaults from: honcho gives each Procfile line
# a PORT of its own (the web's + 100 per line), so a worker's PORT says nothing about the web.
# scripts/serve.sh (`make run`) sets WEB_PORT before honcho starts; a lone process uses its PORT.
WEB_PORT = env_int("WEB_PORT", env_int("PORT", 8000))
# Links in e-mails, rendered by whichever process sends them. In development, the address
# `make run` serves on (BIND_HOST, WEB_PORT).
_DEV_HOST = env_str("BIND_HOST", "localhost")
SITE_URL = env_str(
    "SITE_URL",
    f"http://{'localhost' if _DEV_HOST in ('', '0.0.0.0', '::') else _DEV_HOST}"  # noqa: S104
    f":{WEB_PORT}",
)
STRIPE_EVENT_RETENTION_DAYS = env_int("STRIPE_EVENT_RETENTION_DAYS", 30)
# Plans offered on /billing/: name -> Stripe price id (the account's own, so no default).
BILLING_PLANS = env_pairs("BILLING_PLANS")
# What each plan unlocks (billing.entitlements.requires_feature) and how many pending
# prebookings it may hold; users without a plan get PREBOOKING_MAX_PENDING.
BILLING_PLAN_FEATURES = {
    "free": [],
    "basic": ["prebooking"],
    "pro": ["prebooking", "priority_firing", "wallet"],
}
BILLING_PLAN_MAX_PENDING = env_pairs("BILLING_PLAN_MAX_PENDING", "basic:50,pro:200")
if not all(limit.isdigit() for limit in BILLING_PLAN_MAX_PENDING.values()):
    raise ImproperlyConfigured("BILLING_PLAN_MAX_PENDING limits must be whole numbers")
BILLING_PLAN_MAX_PENDING = {plan: int(limit) for plan, limit in BILLING_PLAN_MAX_PENDING.items()}
# Wallet top-ups through Checkout, in the currency's smallest unit.
BILLING_TOP_UP_CURRENCY = env_str("BILLING_TOP_UP_CURRENCY", "eur").lower()
BILLING_TOP_UP_MIN = env_int("BILLING_TOP_UP_MIN", 500)
BILLING_TOP_UP_MAX = env_int("BILLING_TOP_UP_MAX", 50_000)
BILLING_CHECKOUT_RATE = env_str(
    "BILLING_CHECKOUT_RATE", "30/h"
)  # per user: subscribe, top up, portal

# Prebooking: bookings fired at the instant a class opens.
# The timing queue (`manage.py jobs_worker --queue timing`) runs only prebooking work, so no
# backlog of webhooks or emails on the default queue can delay a firing.
PREBOOKING_QUEUE = "timing"

# Django's Tasks API (django-tasks; django.tasks from Django 6.0) on the jobs layer: every job
# is a @task, enqueued into jobs.Job rows and run by `manage.py jobs_worker --queue <name>`.
TASKS = {
    "default": {
        "BACKEND": "jobs.backend.JobsBackend",
        "QUEUES": ["default", PREBOOKING_QUEUE],
    }
}
# The armer job is due LEAD seconds before the instant (the queue starts it to the millisecond);
# it opens connections PREPARE seconds ahead and claims the group CLAIM_AHEAD ms ahead.
PREBOOKING_LEAD_SECONDS = env_int("PREBOOKING_LEAD_SECONDS", 5)
PREBOOKING_RETRY_WINDOW = env_int("PREBOOKING_RETRY_WINDOW", 60)
PREBOOKING_NOT_OPEN_RETRY_SECONDS = env_int("PREBOOKING_NOT_OPEN_RETRY_SECONDS", 5)
PREBOOKING_PREPARE_SECONDS = env_int("PREBOOKING_PREPARE_SECONDS", 3)
PREBOOKING_CLAIM_AHEAD_MS = env_int("PREBOOKING_CLAIM_AHEAD_MS", 100)
# Send each burst under SCHED_FIFO when the process may (root / CAP_SYS_NICE); see firing.py.
PREBOOKING_REALTIME_SEND = env_bool("PREBOOKING_REALTIME_SEND", True)
PREBOOKING_MAX_AHEAD_DAYS = env_int("PREBOOKING_MAX_AHEAD_DAYS", 30)
PREBOOKING_MIN_AHEAD_SECONDS = env_int("PREBOOKING_MIN_AHEAD_SECONDS", 5)
PREBOOKING_MAX_PENDING = env_int("PREBOOKING_MAX_PENDING", 20)
# Gyms open booking a few days before a class; a class further from its opening is a typo.
PREBOOKING_CLASS_WITHIN_DAYS = env_int("PREBOOKING_CLASS_WITHIN_DAYS", 14)
PREBOOKING_HTTP_TIMEOUT = env_int("PREBOOKING_HTTP_TIMEOUT", 10)
PREBOOKING_STUCK_SECONDS = env_int("PREBOOKING_STUCK_SECONDS", 30)
# Providers: name -> (label, base URL, token). "demo" is the bundled demo gym (make run starts it).
# The development gyms listen at offsets from the web's port (8765 and 9766 beside 8000), so two
# stacks on two PORTs do not collide; the offsets differ by 1001 so that neither do PORTs 1 or
# 100 apart.
PREBOOKING_DEMO_GYM_PORT = env_int("PREBOOKING_DEMO_GYM_PORT", WEB_PORT + 765)
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
# An armer holds a timing worker from LEAD before its instant until the retry window closes;
# each instant has a primary and a hot standby (docs/prebooking.md), so a worker per armer.
PREBOOKING_ARM_SECONDS = PREBOOKING_LEAD_SECONDS + PREBOOKING_RETRY_WINDOW + 60

# One queue (docs/queue.md): django-q2 runs the workers, and its broker is ours, claiming
# jobs.Job rows directly (jobs/broker.py): there is no other delivery record, and so no
# visibility timeout. `poll` is the backstop of the LISTEN sleep (a NOTIFY or the earliest run_at
# ahead wakes it first) and bounds how long a stopping cluster waits for its pusher. bulk: jobs
# claimed per statement.
Q_CLUSTER = {
    "name": "default",
    "orm": "default",
    "broker_class": "jobs.broker.JobsBroker",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 120),
    # django-q2 wants retry > timeout; our broker has no visibility timeout (a crashed attempt
    # is found by its job's lease), so this is only kept consistent.
    "retry": env_int("Q_RETRY", 150),
    "max_attempts": 0,
    "ack_failures": False,
    # Attempts are recorded by the jobs layer (jobs.JobAttempt); the runner never raises, so
    # django-q2 saves nothing per task.
    "save_limit": -1,
    "poll": env_float("Q_POLL", 1.0),
    "bulk": env_int("Q_BULK", 4),
    "recycle": env_int("Q_RECYCLE", 500),  # django-q2's default
    "catch_up": False,
    "label": "Task queue",
    "ALT_CLUSTERS": {
        PREBOOKING_QUEUE: {
            # Six instants armed at once per cluster, a primary and a standby each. Workers are
            # forked; fewer ran out when a 100-request instant was slow to answer
            # (docs/prebooking.md, "Known limits").
            "workers": env_int("Q_TIMING_WORKERS", 12),
            "timeout": PREBOOKING_ARM_SECONDS + 30,
            "retry": PREBOOKING_ARM_SECONDS + 31,
            # One job at a time per claim: the two armers of an instant go to two workers,
            # often of two clusters, rather than both to the first cluster that woke.
            "bulk": 1,
        }
    },
}
# Seconds of lease a claimed attempt holds, renewed every third of it by the process holding
# it (docs/queue.md): past it, the holder died, the attempt counts as crashed and the job is
# claimed again. A task's `heartbeat` option sets its own.
JOBS_LEASE_SECONDS = env_float("JOBS_LEASE_SECONDS", 5)
# A claim of several jobs runs them in one worker, one after the other; it takes no more than
# fit in this many seconds of timeouts, so that one slow batch does not hold runnable jobs.
JOBS_BATCH_SECONDS = env_float("JOBS_BATCH_SECONDS", 120)
# Modules of tasks beyond the apps' tasks.py (tests and benchmarks start real workers that
# must know theirs).
JOBS_EXTRA_MODULES = env_list("JOBS_EXTRA_MODULES")

# AimHarder: a real gym platform. Every account-level call (login, session check) goes
# to AIMHARDER_LOGIN_URL; box calls to AIMHARDER_BOX_URL with {box} = the box's slug, so a local
# fake can serve http://127.0.0.1:PORT/{box}. Development points both at the fake AimHarder
# (`manage.py fake_aimharder`, the Procfile's `aimharder:` line); no default reaches aimharder.com
# unless DEBUG is off.
AIMHARDER_FAKE_PORT = env_int("AIMHARDER_FAKE_PORT", WEB_PORT + 1766)
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
# The class list and the pick page ask AimHarder for a day's classes: a member's reloads within
# the cache time are served from our cache, and a member's requests to both pages are limited.
AIMHARDER_CLASSES_CACHE_SECONDS = env_int("AIMHARDER_CLASSES_CACHE_SECONDS", 30)
AIMHARDER_CLASSES_RATE = env_str("AIMHARDER_CLASSES_RATE", "120/h")
# Login, clock probing and connections start this long before the instant.
AIMHARDER_PREPARE_SECONDS = env_int("AIMHARDER_PREPARE_SECONDS", 12)
# Arrival targeting (prebooking/providers/clock.py): aim each request this far after the gym's
# opening.
AIMHARDER_ARRIVAL_MARGIN_MS = env_int("AIMHARDER_ARRIVAL_MARGIN_MS", 5)
AIMHARDER_CLOCK_PROBING = env_bool("AIMHARDER_CLOCK_PROBING", True)
# The fake AimHarder's own clock skew and one-way delay (tests, demo, benchmark).
AIMHARDER_FAKE_ENABLED = env_bool("AIMHARDER_FAKE_ENABLED", DEBUG)
AIMHARDER_FAKE_SKEW_MS = env_int("AIMHARDER_FAKE_SKEW_MS", 0)
AIMHARDER_FAKE_DELAY_MS = env_int("AIMHARDER_FAKE_DELAY_MS", 0)
AIMHARDER_DEFAULT_TIME_ZONE = env_str("AIMHARDER_DEFAULT_TIME_ZONE", "Europe/Madrid")
PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS = env_int("PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS", 100)

# Linked gym accounts' passwords are encrypted at rest with Fernet
# (prebooking/providers/credentials.py).
# PREBOOKING_CREDENTIALS_KEY: one or more comma-separated Fernet keys, newest first; every key
# decrypts, the first encrypts (rotation: docs/prebooking.md). Production refuses to start
# without one; development derives a key from SECRET_KEY (never valid in production), and a
# system check (prebooking.checks) refuses a malformed one.
PREBOOKING_CREDENTIALS_KEYS = env_list("PREBOOKING_CREDENTIALS_KEY")
if not PREBOOKING_CREDENTIALS_KEYS and not DEBUG:
    raise ImproperlyConfigured(
        "PREBOOKING_CREDENTIALS_KEY must be set when DEBUG is off (it encrypts linked gym "
        "accounts' passwords). Generate one with: python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key().decode())'"
    )

if not DEBUG and not METRICS_TOKEN and not METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be set when DEBUG is off (Prometheus sends it as "
        "'Authorization: Bearer <token>'), or METRICS_PUBLIC=1 to serve /metrics to anyone."
    )
