"""Prometheus metrics: the one registry, the request metrics, and `/metrics`.

- Under gunicorn every worker is its own process, so counters live in files shared by the
  workers (prometheus_client's multiprocess mode): deploy/gunicorn.conf.py sets
  PROMETHEUS_MULTIPROC_DIR before any worker imports prometheus_client, empties the directory at
  master start and marks dead workers. Without it (tests, `flask run`) one in-process registry.
- Counters and histograms are declared once per process with `counter()` / `histogram()` (at
  import of the module that owns them; features declare theirs the same way).
- Values that are facts of the database (the reminder outbox's backlog, the scheduler's
  heartbeat) are not counted in a worker: features register a scrape source (`scrape_source`)
  that computes them when /metrics is read, so every worker and host answers the same.
- Labels are bounded: the route template (never the raw path, whose tokens and coordinates
  would each become a series), the method from a fixed list, the status.
- /metrics is not public: loopback, METRICS_ALLOW networks, or `Authorization: Bearer
  <METRICS_TOKEN>`; anyone else gets the ordinary 404 envelope."""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
from typing import Callable, Iterable

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric

from app.core.errors import APIError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "(unmatched)"  # every request no route matched: one series, not one per path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds; up to the QR sheet of a large market (gunicorn's timeout is 120 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)

REGISTRY = CollectorRegistry()  # the in-process one; in multiprocess mode the files are read instead
# Decided once, as prometheus_client did when it was imported: a variable set later (by a
# process that reads the gunicorn config without being gunicorn) changes nothing here.
_MULTIPROC_DIR = os.environ.get(MULTIPROC_ENV) if values.ValueClass is not values.MutexValue else None
if _MULTIPROC_DIR:
    # A process that inherited the variable without gunicorn's start hook (a CLI command run
    # from a worker's environment) would fail at its first counter without the directory.
    os.makedirs(_MULTIPROC_DIR, exist_ok=True)
_declared: dict[str, object] = {}
_declare_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    return _MULTIPROC_DIR


def _declare(kind, name: str, documentation: str, labelnames: Iterable[str], **kwargs):
    """One metric object per name and process, however often a module or app asks for it."""
    with _declare_lock:
        existing = _declared.get(name)
        if existing is None:
            existing = _declared[name] = kind(name, documentation, tuple(labelnames), registry=REGISTRY, **kwargs)
        elif not isinstance(existing, kind):
            raise ValueError(f"metric {name!r} declared twice with different kinds")
        return existing


def counter(name: str, documentation: str, labelnames: Iterable[str] = ()) -> Counter:
    return _declare(Counter, name, documentation, labelnames)


def histogram(name: str, documentation: str, labelnames: Iterable[str] = (),
              buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
    return _declare(Histogram, name, documentation, labelnames, buckets=buckets)


REQUESTS = counter("xgz_http_requests_total", "HTTP requests answered, by route template, method and status",
                   ("route", "method", "status"))
LATENCY = histogram("xgz_http_request_duration_seconds",
                    "Time the application took to produce a response (transfer excluded)",
                    ("route", "method", "status"))


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    """Called by the response frame (app.core.frame) once per request, the badge fast path's too."""
    labels = (route or UNMATCHED, method if method in METHODS else "other", str(status))
    try:
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(seconds)
    except Exception:  # a full disk under the multiprocess directory must not fail the request
        log.warning("metrics: could not record a request", exc_info=True)


# -- scrape-time sources -----------------------------------------------------------------------------
# name -> function yielding metric families, computed when /metrics is read (in an app context).
_sources: dict[str, Callable[[], Iterable[Metric]]] = {}


def scrape_source(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Register (or replace: create_app may run more than once) a source of scrape-time values."""
    _sources[name] = collect


class _ScrapeSources:
    def collect(self):
        from app.extensions import db

        up = GaugeMetricFamily("xgz_metrics_source_up", "1 when a scrape-time source answered, 0 when it failed",
                               labels=["source"])
        for name, collect in sorted(_sources.items()):
            try:
                families = list(collect())
            except Exception as exc:  # the database is down: the other metrics still answer
                db.session.rollback()
                log.warning("metrics source %s failed: %s", name, type(exc).__name__)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


class _Forward:
    """The in-process registry's metrics, inside the per-scrape registry."""

    def collect(self):
        return REGISTRY.collect()


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Forward())
    registry.register(_ScrapeSources())
    return generate_latest(registry)


# -- access -----------------------------------------------------------------------------------------
_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def parse_networks(value) -> tuple:
    """METRICS_ALLOW ("10.0.0.0/8, 192.168.1.5") -> networks; ValueError names the bad entry."""
    items = value.split(",") if isinstance(value, str) else (value or ())
    networks = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"METRICS_ALLOW 中的网段无法识别：{item!r}（应为 CIDR，如 10.0.0.0/8）") from None
    return tuple(networks)


def _client_address():
    """The caller's address as this app sees it (after ProxyFix when PROXY_COUNT is set). A
    request that came through a proxy the app was not told about (PROXY_COUNT=0 yet forwarding
    headers present) has only the proxy's address, typically 127.0.0.1: that proves nothing."""
    if not current_app.config.get("PROXY_COUNT") and any(name in request.headers for name in _PROXY_HEADERS):
        return None
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _token_matches() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if not token or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def allowed() -> bool:
    if _token_matches():
        return True
    address = _client_address()
    if address is None:
        return False
    if address.is_loopback:
        return True
    return any(address in network for network in current_app.extensions.get("metrics_allow", ()))


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    if not allowed():
        raise APIError(code="NOT_FOUND")  # as if there were nothing here
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def install(app) -> None:
    """create_app: parse METRICS_ALLOW once (a typo stops the start, not the scrape later)."""
    app.extensions["metrics_allow"] = parse_networks(app.config.get("METRICS_ALLOW"))
    app.register_blueprint(bp)
