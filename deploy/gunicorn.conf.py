"""gunicorn settings for the API (`gunicorn -c deploy/gunicorn.conf.py wsgi:app`).

Every value can be overridden with an environment variable of the same name in upper case
prefixed GUNICORN_ (GUNICORN_WORKERS=8), or on the command line. docs/operations.md explains
each choice."""
import multiprocessing
import os
from pathlib import Path


def _env(name: str, default):
    value = os.environ.get(f"GUNICORN_{name.upper()}")
    return type(default)(value) if value is not None else default


bind = _env("bind", "127.0.0.1:8000")
# Sync workers: every request is short and bounded (uploads are read whole, decoded within a
# budget); 2 per core plus one covers waits on PostgreSQL and WeChat.
workers = _env("workers", multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
# Long enough for the QR sheet of a market of several thousand stalls; nginx's
# proxy_read_timeout (deploy/nginx) is set just above it.
timeout = _env("timeout", 120)
graceful_timeout = _env("graceful_timeout", 30)  # a deploy waits this long for running requests
keepalive = 5
# A worker is replaced after this many requests (with jitter, so not all at once): bounds any
# slow growth of memory.
max_requests = _env("max_requests", 5000)
max_requests_jitter = _env("max_requests_jitter", 500)
# The longest request line gunicorn accepts (its maximum); longer ones get the API's JSON 414.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Behind nginx on the same host: trust its X-Forwarded-* (the app applies PROXY_COUNT).
forwarded_allow_ips = _env("forwarded_allow_ips", "127.0.0.1")
# gunicorn's control socket defaults to one path per user: two instances on a host (a test
# server beside a deployment) would fight over it. systemd restarts and HUPs instead.
control_socket_disable = True

# Logs: the access log records the route template and status, never the raw path or query
# string (coordinates, tokens, photo keys); error lines are redacted (app.core.serving).
# LOG_FORMAT=json: the app writes each request's one access line itself (app.core.frame, with
# the user id and latency), so gunicorn's is off, and its error lines are JSON too.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
accesslog = None if LOG_FORMAT == "json" else _env("accesslog", "-")
errorlog = _env("errorlog", "-")
loglevel = _env("loglevel", "info")
logger_class = "app.core.serving.RouteAccessLogger"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'


# Metrics (app.core.metrics): each worker writes its counters into files of this directory and
# /metrics adds them up across workers. prometheus_client decides when it is first imported
# whether it runs in this mode, and gunicorn imports logger_class (which reaches it) before any
# hook runs: so the variable is set here, as the config is read; the workers inherit it.
METRICS_DIR = Path(os.environ.get("METRICS_DIR") or Path(
    os.environ.get("INSTANCE_DIR") or Path(__file__).resolve().parent.parent / "instance") / "metrics")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)


def _fresh_metrics_dir():
    """Counters start at zero with each start of the master (not on a HUP reload, which keeps
    the workers' totals): files of a previous run would be added to this one's."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):  # only prometheus_client's files, whatever else is there
        stale.unlink(missing_ok=True)


def on_starting(server):
    _fresh_metrics_dir()  # before any worker exists
    from app.core.serving import install_envelope_errors

    install_envelope_errors()  # in the master, before the workers fork
    _refuse_an_unfit_production_config(server)


def post_worker_init(worker):
    """Without Redis (JOBS_BACKEND auto/thread) the background jobs run in threads of each worker:
    started here, as the worker begins, so what was left queued runs without waiting for a
    request. With Redis the RQ workers (`flask jobs worker`) run them and nothing starts."""
    from app.jobs.dispatch import start_if_embedded

    app = getattr(worker, "wsgi", None)
    if getattr(app, "config", None) is not None and start_if_embedded(app):
        worker.log.info("后台任务在本进程（pid %s）的 %s 个线程中执行（未配置 Redis）", os.getpid(),
                        app.config.get("JOBS_THREADS", 2))


def worker_exit(server, worker):
    """A worker leaving (a deploy, max_requests) claims no new job; one it is running finishes
    within graceful_timeout or is found by the sweep and re-queued."""
    from app.jobs.embedded import stop

    app = getattr(worker, "wsgi", None)
    if getattr(app, "extensions", None) is not None:
        stop(app, wait=False)


def child_exit(server, worker):
    """A worker that exits (max_requests, a crash, a reload) keeps its counters' file, so the
    totals never go backwards; only its live gauges are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _refuse_an_unfit_production_config(server):
    """APP_ENV=production: the same checks as `flask doctor`; a fatal finding stops the start."""
    if os.environ.get("APP_ENV") != "production":
        return
    from app import create_app
    from app.doctor import examine, fatal, report

    app = create_app()
    findings = examine(app)
    with app.app_context():  # no connection of the master's may survive into the forked workers
        from app.extensions import db

        for engine in db.engines.values():
            engine.dispose()
    if fatal(findings):
        server.log.error("配置不能上线（flask --app wsgi doctor 查看全部）：\n%s", report(findings))
        raise SystemExit(1)
