"""No Redis (the embedded default): jobs run in a small pool of threads of the web process.

The queue is the `jobs` table itself: a dispatcher thread per process claims the oldest queued
job whenever a thread is free (a submit wakes it at once; it also looks every POLL_SECONDS), so
a job queued by one gunicorn worker may run in another, and a job left queued by a restart is
picked up by the next process. A job running when its process dies is found by the sweep (this
dispatcher runs it every JOBS_SWEEP_SECONDS) and re-queued once."""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
_lock = threading.Lock()


class Dispatcher:
    def __init__(self, app, threads: int) -> None:
        self.app = app
        self.pid = os.getpid()
        self.threads = max(1, threads)
        self.free = threading.Semaphore(self.threads)
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="xgz-job")
        self.thread = threading.Thread(target=self._loop, name="xgz-job-dispatcher", daemon=True)
        self.next_sweep = 0.0

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        from app.jobs.runner import claim_next, worker_name
        from app.jobs.sweep import sweep

        while not self.stopping.is_set():
            try:
                if time.monotonic() >= self.next_sweep:
                    self.next_sweep = time.monotonic() + float(self.app.config.get("JOBS_SWEEP_SECONDS", 60))
                    sweep(self.app)
                while self.free.acquire(blocking=False):
                    worker = worker_name()
                    with self.app.app_context():
                        public_id = claim_next(worker)
                    if public_id is None:
                        self.free.release()
                        break
                    self.pool.submit(self._run, public_id, worker)
            except Exception:  # the database is down: try again at the next wake-up
                log.exception("jobs dispatcher pass failed")
            self.wakeup.wait(POLL_SECONDS)
            self.wakeup.clear()

    def _run(self, public_id: str, worker: str) -> None:
        from app.jobs.runner import execute

        try:
            execute(self.app, public_id, worker)
        finally:
            self.free.release()
            self.wakeup.set()  # a thread is free: take the next queued job

    def stop(self, wait: bool = True) -> None:
        self.stopping.set()
        self.wakeup.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=wait, cancel_futures=True)


def dispatcher(app, start: bool = True) -> Dispatcher | None:
    """This process's dispatcher for the app (a new one after a fork: threads do not survive it)."""
    current = app.extensions.get("jobs_dispatcher")
    if current is not None and current.pid == os.getpid() and not current.stopping.is_set():
        return current
    if not start:
        return None
    with _lock:
        current = app.extensions.get("jobs_dispatcher")
        if current is None or current.pid != os.getpid() or current.stopping.is_set():
            current = Dispatcher(app, int(app.config.get("JOBS_THREADS", 2)))
            app.extensions["jobs_dispatcher"] = current
            current.start()
    return current


def wake(app) -> None:
    dispatcher(app).wakeup.set()


def ensure_running(app) -> None:
    """Called before requests (a cheap check once it runs), so a web process started by any
    server picks up what was left queued (and sweeps). `dispatcher` starts one only if this
    process has none."""
    dispatcher(app)



def stop(app, wait: bool = True) -> None:
    current = app.extensions.pop("jobs_dispatcher", None)
    if current is not None and current.pid == os.getpid():
        current.stop(wait=wait)
