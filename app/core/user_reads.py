"""Repeat reads of one owner's data answered from the worker's memory while it is unchanged.

A phone opens "我的积分" again and again; its answer changes only when that user's ledger does.
`cached_read("points", owner=…)` keeps the finished response (body bytes and ETag) per owner,
route and query, labelled with the owner's change counter (app.core.generations) taken
*before* the view read anything. A later read whose counter still matches is answered from
memory: no database, no serialisation. `If-None-Match` with the current ETag answers 304.

Bounded in entries and age: the age bounds the only case counters cannot see (a bump lost while
Redis was down), and a worker's memory stays flat."""
from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Callable

from flask import Response, current_app, request

from app.core import generations
from app.core.caches import process_cache

MAX_ENTRIES = 20_000
MAX_AGE_SECONDS = 30.0
CACHE_CONTROL = "private, no-cache"  # the owner's own data: never in a shared cache; revalidate


class _Answers:
    def __init__(self) -> None:
        self._data: OrderedDict[tuple, tuple[int, float, bytes, str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, counter: int):
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] != counter or item[1] <= time.monotonic():
                return None
            self._data.move_to_end(key)
            return item

    def put(self, key: tuple, counter: int, body: bytes, mimetype: str) -> str:
        etag = hashlib.blake2b(body, digest_size=12).hexdigest()
        with self._lock:
            self._data[key] = (counter, time.monotonic() + MAX_AGE_SECONDS, body, mimetype, etag)
            self._data.move_to_end(key)
            while len(self._data) > MAX_ENTRIES:
                self._data.popitem(last=False)
        return etag

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_answers = process_cache("user_reads", _Answers())


def _answer(body: bytes, mimetype: str, etag: str) -> Response:
    if etag in request.if_none_match:
        response = Response(status=304)
    else:
        response = Response(body, status=200, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def cached_read(topic: str, owner: Callable[[], object]) -> Callable:
    """Route decorator, placed below `@blp.arguments` and above `@blp.response`, so it sees the
    parsed query and keeps the serialised answer. `owner()` names whose `topic` the view reads
    (authentication has run before any view)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            owner_key = owner()
            counter = generations.current([generations.key(topic, owner_key)])[0]
            if counter is None:  # counters unreadable: read the database, keep nothing
                return view(*args, **kwargs)
            cache_key = (request.endpoint, owner_key, _frozen(args, kwargs))
            kept = _answers.get(cache_key, counter)
            if kept is not None:
                return _answer(kept[2], kept[3], kept[4])
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200 and not response.direct_passthrough:
                body = response.get_data()
                return _answer(body, response.mimetype, _answers.put(cache_key, counter, body, response.mimetype))
            return response

        wrapper.own_read_topics = (topic,)  # copied outward by functools.wraps, up to the route
        return wrapper

    return decorator


def keys_for_this_request(owner_key) -> list[str]:
    """The counters this request's view will ask for, so that authentication can fetch them in
    the same round trip as its own (one Redis call per request)."""
    view = current_app.view_functions.get(request.endpoint or "")
    return [generations.key(topic, owner_key) for topic in getattr(view, "own_read_topics", ())]


def _frozen(args, kwargs) -> tuple:
    def freeze(value):
        if isinstance(value, dict):
            return tuple(sorted((k, freeze(v)) for k, v in value.items()))
        if isinstance(value, (list, tuple)):
            return tuple(freeze(v) for v in value)
        return value

    return freeze(args), freeze(kwargs)
