"""The one registry of per-process caches.

A worker keeps a few caches in memory (verified tokens, committed facts, rendered badges,
prepared statements, the badge reader's connection). Each is declared with `process_cache`,
which registers it here, so `clear_process_caches()` empties every one of them: tests call it
between tests (ids restart with each test database), and create_app arranges for it to run in a
child after a fork (a forked worker must not inherit its parent's cached connections or
answers). A cache that is not declared here cannot be cleared, so declare every one.

Anything registered needs a `clear()` method."""
from __future__ import annotations

import os
import threading
from typing import Protocol, TypeVar


class Clearable(Protocol):
    def clear(self) -> None: ...


C = TypeVar("C", bound=Clearable)

_registry: dict[str, Clearable] = {}
_lock = threading.Lock()
_fork_hook_installed = False


def process_cache(name: str, cache: C) -> C:
    """Declare a per-process cache (at import of the module that owns it); returns it."""
    with _lock:
        if name in _registry and _registry[name] is not cache:
            raise ValueError(f"process cache {name!r} declared twice")
        _registry[name] = cache
    return cache


def registered() -> dict[str, Clearable]:
    return dict(_registry)


def clear_process_caches() -> None:
    for cache in list(_registry.values()):
        cache.clear()


def install(app) -> None:
    """create_app: expose the registry on the app and clear every cache in a forked child."""
    global _fork_hook_installed
    app.extensions["process_caches"] = _registry
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=clear_process_caches)
        _fork_hook_installed = True
