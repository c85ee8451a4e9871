"""Reusable benchmark harness (QUALITY.md): start apps under the same gunicorn command, load them
with the same wrk command, compare with a bare-Flask baseline started by the same script, print a
table and exit non-zero when a bar is missed.

    from scripts.bench.harness import Bench, gunicorn, wrk

    bench = Bench("P1 example")
    with gunicorn("scripts.bench.baseline_app:app") as base:
        baseline = wrk(base + "/")
    with gunicorn("wsgi:app", env={...}, ready_path="/healthz") as url:
        result = wrk(url + "/api/v1/...")
    bench.ratio("P1", "badge JSON warm", result, baseline, min_rps_ratio=0.90, max_p99_ratio=2.0)
    sys.exit(bench.report())

Everything is a ratio taken in one run, because absolute figures drift between runs."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
WRK_THREADS, WRK_CONNECTIONS, WRK_SECONDS = 2, 32, 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_bin() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@contextlib.contextmanager
def gunicorn(target: str, env: dict[str, str] | None = None, workers: int = 2,
             ready_path: str = "/", timeout: float = 30.0, threads: int = 1) -> Iterator[str]:
    """Run `gunicorn -w 2 -k sync -b 127.0.0.1:PORT target` from the project root (`-k gthread
    --threads N` when threads > 1: concurrent requests and keep-alive in one process); yields the
    base URL once `ready_path` answers; stops the server (and only it) afterwards."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
    worker = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]
    cmd = [python_bin(), "-m", "gunicorn", "-w", str(workers), *worker, "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", target]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=log,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early, see {log.name}:\n{Path(log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + ready_path, timeout=2) as response:
                    response.read()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer in {timeout}s, see {log.name}")
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class WrkResult:
    url: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0
    raw: str = field(default="", repr=False)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"cannot parse latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, url: str = "") -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(url=url, rps=rps, p50_ms=p50, p99_ms=p99, requests=requests,
                     non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                     socket_errors=sum(map(int, errors.groups())) if errors else 0, raw=output)


def wrk(url: str, seconds: int = WRK_SECONDS, threads: int = WRK_THREADS, connections: int = WRK_CONNECTIONS,
        script: str | None = None, warmup: float = 1.0) -> WrkResult:
    """`wrk -t2 -c32 -d10s --latency [-s script] URL` after a short warm-up."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk 未安装：apt-get install -y wrk")
    extra = ["-s", script] if script else []
    if warmup:
        subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, int(warmup))}s", *extra, url],
                       capture_output=True, text=True, check=True)
    result = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
                            capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout, url)


def baseline(seconds: int = WRK_SECONDS) -> WrkResult:
    """The bare Flask app under the same gunicorn and wrk commands."""
    with gunicorn("scripts.bench.baseline_app:app") as url:
        return wrk(url + "/", seconds=seconds)


@dataclass
class Row:
    bar: str
    what: str
    measured: str
    goal: str
    ok: bool


class Bench:
    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[Row] = []

    def add(self, bar: str, what: str, measured: str, goal: str, ok: bool) -> None:
        self.rows.append(Row(bar, what, measured, goal, ok))

    def ratio(self, bar: str, what: str, result: WrkResult, base: WrkResult, min_rps_ratio: float,
              max_p99_ratio: float | None = None) -> bool:
        rps_ratio = result.rps / base.rps
        ok = rps_ratio >= min_rps_ratio and result.non_2xx == 0 and result.socket_errors == 0
        measured = f"{result.rps:,.0f} req/s = {rps_ratio:.2f}× base; p99 {result.p99_ms:.1f} ms"
        goal = f"≥ {min_rps_ratio:.2f}×"
        if max_p99_ratio is not None:
            p99_ratio = result.p99_ms / base.p99_ms
            ok = ok and p99_ratio <= max_p99_ratio
            measured += f" = {p99_ratio:.2f}× base"
            goal += f", p99 ≤ {max_p99_ratio:.1f}×"
        if result.non_2xx or result.socket_errors:
            measured += f"; non-2xx {result.non_2xx}, socket errors {result.socket_errors}"
        self.add(bar, what, measured, goal, ok)
        return ok

    def limit(self, bar: str, what: str, value: float, unit: str, maximum: float) -> bool:
        ok = value <= maximum
        self.add(bar, what, f"{value:,.2f} {unit}", f"≤ {maximum:g} {unit}", ok)
        return ok

    def report(self, base: WrkResult | None = None) -> int:
        print(f"\n== {self.title} ==")
        if base is not None:
            print(f"baseline (bare Flask, gunicorn -w 2 -k sync, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}): "
                  f"{base.rps:,.0f} req/s, p50 {base.p50_ms:.2f} ms, p99 {base.p99_ms:.2f} ms")
        widths = [max(len(getattr(r, f)) for r in self.rows + [Row("bar", "what", "measured", "goal", True)])
                  for f in ("bar", "what", "measured", "goal")]
        header = ("bar", "what", "measured", "goal")
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  ok")
        for row in self.rows:
            cells = (row.bar, row.what, row.measured, row.goal)
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + ("  ✓" if row.ok else "  ✗ MISSED"))
        missed = [r.bar for r in self.rows if not r.ok]
        print("all bars met" if not missed else f"missed: {', '.join(missed)}")
        self._record()
        return 1 if missed else 0

    def _record(self) -> None:
        """With BENCH_RESULTS set (run_all does), append the rows as JSON lines under the
        column BENCH_COLUMN (sqlite / postgresql), for the side-by-side table."""
        import json

        path = os.environ.get("BENCH_RESULTS")
        if not path:
            return
        column = os.environ.get("BENCH_COLUMN", "")
        with open(path, "a", encoding="utf-8") as out:
            for row in self.rows:
                out.write(json.dumps({"column": column, "bar": row.bar, "what": row.what, "measured": row.measured,
                                      "goal": row.goal, "ok": row.ok}, ensure_ascii=False) + "\n")
