"""Configuration: every value comes from the environment, with defaults that run the whole
system on one machine with nothing installed (SQLite under instance/, no Redis, the local
WeChat simulator). Read only inside create_app(), never at import time of the app package."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _instance_dir() -> Path:
    path = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else generated once into instance/ and reused."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Subscribe-message templates the mini-program asks consent for (keys; their WeChat ids are
# settings, WECHAT_TPL_<KEY>).
SUBSCRIBE_TEMPLATE_KEYS = ("credential_expiry", "pledge_renewal", "activity_start", "branch_duty", "review_digest",
                           "review_result")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Config:
    """Built per app so that tests and processes can set the environment first."""

    def __init__(self) -> None:
        instance = _instance_dir()
        self.INSTANCE_DIR = str(instance)
        # "production" makes `flask doctor`'s findings fatal and the gunicorn config refuse to
        # start on them (deploy/gunicorn.conf.py); anything else is a development machine.
        self.APP_ENV = os.environ.get("APP_ENV", "development")
        self.SECRET_KEY_FROM_ENV = bool(os.environ.get("SECRET_KEY"))
        self.SECRET_KEY = _secret_key(instance)
        # Issue 13 item 6, secrets and backups.
        # Key rotation: the previous SECRET_KEY(s), comma-separated. Flask's
        # name and form (a list, oldest first, the current key not in it). They keep only
        # the short-lived check-in codes and code-image URLs on screen valid across the restart;
        # login tokens signed with them are rejected, which is what a rotation is for. Remove
        # them a few minutes after every instance runs the new key (`flask doctor` warns).
        self.SECRET_KEY_FALLBACKS = [key.strip() for key in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",")
                                     if key.strip()]
        # Backups (scripts/backup.py): where each run writes its dated directory (database dump
        # and photos), and how many days of them are kept; older ones are deleted by the run.
        self.BACKUP_DIR = os.environ.get("BACKUP_DIR", str(instance / "backups"))
        self.BACKUP_KEEP_DAYS = _int("BACKUP_KEEP_DAYS", 14)
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "DATABASE_URL", f"sqlite:///{instance / 'xgz.db'}"
        )
        # A pooled connection is proven alive before use (QUALITY R4). With psycopg 3 that is
        # app/core/db._verify_postgres_connection (a free socket check, a real ping only when it
        # shows trouble or the connection sat idle) instead of a round trip on every checkout.
        psycopg3 = self.SQLALCHEMY_DATABASE_URI.split(":", 1)[0] == "postgresql+psycopg"
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": not psycopg3}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            self.SQLALCHEMY_ENGINE_OPTIONS.update(pool_size=10, max_overflow=20, pool_recycle=1800)
        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        self.PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.WECHAT_APPID = os.environ.get("WECHAT_APPID", "wxsimulator000001")
        self.WECHAT_SECRET = os.environ.get("WECHAT_SECRET", "simulator-secret")
        self.WECHAT_API_BASE_URL = os.environ.get("WECHAT_API_BASE_URL", "http://127.0.0.1:5055/")
        if not self.WECHAT_API_BASE_URL.endswith("/"):
            self.WECHAT_API_BASE_URL += "/"
        self.WECHAT_TIMEOUT_SECONDS = float(os.environ.get("WECHAT_TIMEOUT_SECONDS", "5"))
        # "扫普通链接二维码打开小程序": WeChat checks that the sticker's domain serves a file it
        # names (e.g. AbCdEf1234.txt) with the content it gives (docs/operations.md).
        self.WECHAT_DOMAIN_VERIFY_FILE = os.environ.get("WECHAT_DOMAIN_VERIFY_FILE") or None
        self.WECHAT_DOMAIN_VERIFY_CONTENT = os.environ.get("WECHAT_DOMAIN_VERIFY_CONTENT", "")
        # Subscribe-message template keys (what the mini-program asks consent for) -> WeChat ids.
        self.WECHAT_SUBSCRIBE_TEMPLATES = {
            key: os.environ.get(f"WECHAT_TPL_{key.upper()}", f"sim-tpl-{key.replace('_', '-')}")
            for key in SUBSCRIBE_TEMPLATE_KEYS}
        # Reminder schedule, in Asia/Shanghai.
        self.REMINDERS_DAILY_AT = os.environ.get("REMINDERS_DAILY_AT", "09:00")
        self.REMINDERS_DIGEST_AT = os.environ.get("REMINDERS_DIGEST_AT", "08:30")
        self.REMINDERS_PURGE_AT = os.environ.get("REMINDERS_PURGE_AT", "03:30")
        # A standby scheduler takes over at most this long after the leader dies (Redis lock).
        self.SCHEDULER_LEASE_SECONDS = float(os.environ.get("SCHEDULER_LEASE_SECONDS", "30"))
        self.REMINDERS_THEME_DAY_DEADLINE = _int("REMINDERS_THEME_DAY_DEADLINE", 5)
        # Subscribe-message dispatcher (app/reminders/dispatcher.py). WeChat documents a daily
        # count per appid, no per-second limit; the cap (per dispatcher process) keeps bursts
        # below its minute quota (45011). One run stops after DISPATCH_MAX_SECONDS (it runs
        # every minute); a batch is claimed, fenced and recorded in one transaction each.
        self.DISPATCH_MAX_PER_SECOND = _int("DISPATCH_MAX_PER_SECOND", 1000)
        self.DISPATCH_WORKERS = _int("DISPATCH_WORKERS", 8)
        self.DISPATCH_BATCH_SIZE = _int("DISPATCH_BATCH_SIZE", 100)
        self.DISPATCH_MAX_SECONDS = float(os.environ.get("DISPATCH_MAX_SECONDS", "50"))
        # 骑手随手拍: the most points a rider earns for the reports filed on one day (anti-farming).
        self.REPORTS_POINTS_DAILY_CAP = _int("REPORTS_POINTS_DAILY_CAP", 20)
        self.UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(instance / "uploads"))
        # Photo storage (app/core/objectstore.py). Unset: files under UPLOAD_DIR (one host).
        # s3://BUCKET/optional/prefix: an S3-compatible bucket shared by every API host (Aliyun
        # OSS, Tencent COS, MinIO). Credentials: these two, else boto3's usual sources
        # (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws). OSS needs the "virtual"
        # addressing style, MinIO usually "path". Short timeouts and few attempts: an outage
        # answers 503 within seconds instead of holding a worker.
        self.STORAGE_URL = os.environ.get("STORAGE_URL") or None
        self.STORAGE_S3_ENDPOINT_URL = os.environ.get("STORAGE_S3_ENDPOINT_URL") or None
        self.STORAGE_S3_REGION = os.environ.get("STORAGE_S3_REGION") or None
        self.STORAGE_S3_ADDRESSING_STYLE = os.environ.get("STORAGE_S3_ADDRESSING_STYLE", "auto")
        self.STORAGE_S3_ACCESS_KEY_ID = os.environ.get("STORAGE_S3_ACCESS_KEY_ID") or None
        self.STORAGE_S3_SECRET_ACCESS_KEY = os.environ.get("STORAGE_S3_SECRET_ACCESS_KEY") or None
        self.STORAGE_S3_CONNECT_TIMEOUT = float(os.environ.get("STORAGE_S3_CONNECT_TIMEOUT", "3"))
        self.STORAGE_S3_READ_TIMEOUT = float(os.environ.get("STORAGE_S3_READ_TIMEOUT", "10"))
        self.STORAGE_S3_MAX_ATTEMPTS = _int("STORAGE_S3_MAX_ATTEMPTS", 2)
        # Background jobs (app/jobs; issue 14 item 1). JOBS_BACKEND: "auto" runs them on RQ
        # workers (`flask jobs worker`) when REDIS_URL is set, else in JOBS_THREADS threads of
        # each API process; "rq" or "thread" to choose. Results (files in the photo store, under
        # jobs/) are kept JOBS_RESULT_TTL_HOURS. A running job whose heartbeat is older than
        # JOBS_LOST_AFTER_SECONDS lost its worker: re-queued once, then failed. Sweeps (lost
        # jobs, expired results) every JOBS_SWEEP_SECONDS.
        self.JOBS_BACKEND = os.environ.get("JOBS_BACKEND", "auto").strip().lower()
        self.JOBS_QUEUE = os.environ.get("JOBS_QUEUE", "xgz")
        self.JOBS_THREADS = _int("JOBS_THREADS", 2)
        self.JOBS_RESULT_TTL_HOURS = float(os.environ.get("JOBS_RESULT_TTL_HOURS", "24"))
        self.JOBS_LOST_AFTER_SECONDS = _int("JOBS_LOST_AFTER_SECONDS", 120)
        self.JOBS_SWEEP_SECONDS = _int("JOBS_SWEEP_SECONDS", 60)
        self.MAX_CONTENT_LENGTH = _int("MAX_UPLOAD_BYTES", 8 * 1024 * 1024)
        self.AUTH_TOKEN_TTL_SECONDS = _int("AUTH_TOKEN_TTL_SECONDS", 7 * 24 * 3600)
        # How long a worker may reuse a verified token's user and roles (0: never). Revocations
        # show at once through the change counters (app/core/generations.py); this only bounds
        # a change made while Redis was unreachable.
        self.AUTH_CACHE_SECONDS = float(os.environ.get("AUTH_CACHE_SECONDS", "30"))
        # The web console (/console/, app/console). A session ends after CONSOLE_IDLE_MINUTES
        # without a request, and CONSOLE_SESSION_HOURS after its login whatever happens; the
        # login QR code's ticket lives CONSOLE_LOGIN_TICKET_SECONDS, a link printed by
        # `flask console login-link` CONSOLE_LOGIN_LINK_MINUTES.
        self.CONSOLE_IDLE_MINUTES = float(os.environ.get("CONSOLE_IDLE_MINUTES", "30"))
        self.CONSOLE_SESSION_HOURS = float(os.environ.get("CONSOLE_SESSION_HOURS", "12"))
        self.CONSOLE_LOGIN_TICKET_SECONDS = _int("CONSOLE_LOGIN_TICKET_SECONDS", 120)
        self.CONSOLE_LOGIN_LINK_MINUTES = _int("CONSOLE_LOGIN_LINK_MINUTES", 15)
        self.TIMEZONE = os.environ.get("TIMEZONE", "Asia/Shanghai")
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
        # Observability (issue 13 item 4). "json": one JSON object per log line, and the app
        # writes the access line itself (gunicorn's is off then); "text" as before.
        self.LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
        # /metrics answers loopback, these networks (comma-separated CIDR) and a bearer of
        # METRICS_TOKEN; everyone else gets 404. Under gunicorn the workers' counters live in
        # METRICS_DIR (default instance/metrics), emptied at each start (deploy/gunicorn.conf.py).
        self.METRICS_ALLOW = os.environ.get("METRICS_ALLOW", "")
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
        # Reverse proxies in front (nginx: 1). Their X-Forwarded-For is trusted only then, so
        # per-address rate limits see the client, not the proxy.
        self.PROXY_COUNT = _int("PROXY_COUNT", 0)
        # Public badge cache: "on", or "off" to compute every read from the database.
        self.BADGE_CACHE = os.environ.get("BADGE_CACHE", "on")
        self.JSON_AS_ASCII = False

        # flask-smorest / OpenAPI
        self.API_TITLE = "小个专党建小程序 API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = None  # we serve our own packaged docs page, no CDN
        self.API_SPEC_OPTIONS = {
            "info": {"description": "小个专党建微信小程序后端接口。错误统一为 {error: {code, message, details}}。"},
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
            },
        }


class TestConfig(Config):
    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
