"""Job kinds: a feature declares `run(ctx, **params)` under a name, plus who may read a job of
that kind. Collected from FEATURE_JOBS by name (strings, not imports: the jobs package imports
no feature, features import it)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

# Modules that declare job kinds. Imported without a safety net: a wrong path fails at start.
FEATURE_JOBS = ("app.markets.jobs", "app.markets.imports", "app.pledges.jobs", "app.jobs.region_import",
                "app.stats.jobs")


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[..., Any]  # run(ctx: JobContext, **params)
    title: str  # Chinese, for messages and logs: "摊位二维码贴纸"
    # may_read(user, job) -> None, or raises an APIError when the user may no longer see it (a
    # role revoked); the owner check comes first and always applies.
    may_read: Callable[[Any, Any], None] | None = None
    timeout_seconds: int = 3600


_kinds: dict[str, JobKind] = {}


def job_kind(name: str, *, title: str, may_read: Callable | None = None, timeout_seconds: int = 3600):
    """Declare a job kind (decorates its `run(ctx, **params)`)."""

    def register(run: Callable) -> Callable:
        existing = _kinds.get(name)
        if existing is not None and existing.run is not run:
            raise ValueError(f"job kind {name!r} declared twice")
        _kinds[name] = JobKind(name, run, title, may_read, timeout_seconds)
        return run

    return register


def load_kinds() -> None:
    for path in FEATURE_JOBS:
        importlib.import_module(path)


def kind_of(name: str) -> JobKind | None:
    if name not in _kinds:
        load_kinds()
    return _kinds.get(name)
