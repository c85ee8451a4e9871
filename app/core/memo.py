"""A small per-worker cache for facts that never change once committed (a check-in, the stored
answer of an Idempotency-Key). Retries arrive in bursts from phones on bad networks; answering
them from memory spares the database without any risk of a stale answer, since the cached
value cannot change. Bounded in size and age so a worker's memory stays flat."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Hashable

from app.core.caches import process_cache


class ImmutableFacts:
    def __init__(self, name: str, size: int, ttl_seconds: float) -> None:
        self.size = size
        self.ttl = ttl_seconds
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        process_cache(name, self)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, value: Any) -> None:
        """Only for values read back from committed rows (never for this request's own writes,
        which may still roll back)."""
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

