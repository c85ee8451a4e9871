"""A county deployment on one machine, for tests: the shipped nginx locations in front of two
gunicorn instances (each with its own instance directory, as on two hosts), sharing PostgreSQL,
Redis and an S3-compatible object store (moto's server, tests/s3server.py), plus reminder
schedulers.

Nothing here is a fake of the thing under test: the processes are the ones production runs, with
the shipped configuration files; only addresses, directories and the WeChat simulator differ."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.s3server import free_port

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NGINX_DIR = PROJECT / "deploy" / "nginx"


def wait_until(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (OSError, requests.RequestException):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start(name: str, argv: list[str], env: dict, log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    with open(log, "wb") as sink:
        popen = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Process(name, popen, log)


def flask(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"flask {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def start_api_host(name: str, env: dict, log_dir: Path, workers: int = 2) -> tuple[Process, str]:
    port = free_port()
    process = start(name, [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-w", str(workers),
                           "-b", f"127.0.0.1:{port}", "wsgi:app"], env, log_dir)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(base + "/healthz", timeout=1).ok or process.popen.poll() is not None,
               60, f"gunicorn {name}")
    assert process.popen.poll() is None, process.text()[-3000:]
    return process, base


@contextmanager
def api_host_on_sqlite(instance: Path, workers: int = 1, **settings: str):
    """gunicorn with the shipped config on a fresh SQLite database of its own (no Redis); yields
    its base URL and process (whose log is `process.log`)."""
    env = {**os.environ, "INSTANCE_DIR": str(instance), "SECRET_KEY": "gunicorn-test",
           "DATABASE_URL": f"sqlite:///{instance / 'served.db'}", "UPLOAD_DIR": str(instance / "uploads"),
           **settings}
    for name in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    flask(env, "db", "upgrade", timeout=120)
    process, base = start_api_host("served", env, instance, workers)
    try:
        yield base, process
    finally:
        process.stop()


def nginx_config(work: Path, hosts: dict[str, str], port: int) -> Path:
    """An nginx.conf around the shipped locations file, verbatim but for its upstream: requests
    carrying `X-Test-Host: a` (or b) are pinned to one host, the rest balanced over both, as in
    production. The shipped log format is used as is."""
    for sub in ("cache", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    locations = (NGINX_DIR / "xgz-locations.conf").read_text()
    assert locations.count("proxy_pass http://xgz_api;") >= 3
    (work / "locations.conf").write_text(locations.replace("http://xgz_api", "http://$xgz_upstream"))
    upstreams = "\n".join(
        f"upstream host_{name} {{ server {base.removeprefix('http://')}; keepalive 4; }}"
        for name, base in hosts.items())
    balanced = "\n".join(f"    server {base.removeprefix('http://')} max_fails=2 fail_timeout=10s;"
                         for base in hosts.values())
    pinned = "\n".join(f"    {name} host_{name};" for name in hosts)
    conf = work / "nginx.conf"
    conf.write_text(f"""
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    include {NGINX_DIR}/xgz-log-format.conf;
    access_log {work}/access.log xgz_noquery;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream xgz_api {{
{balanced}
        keepalive 8;
    }}
{upstreams}
    map $http_x_test_host $xgz_upstream {{
        default xgz_api;
{pinned}
    }}
    proxy_cache_path {work}/cache levels=1:2 keys_zone=xgz_badge:10m max_size=50m inactive=10m use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        include {work}/locations.conf;
    }}
}}
""")
    return conf


def start_nginx(work: Path, hosts: dict[str, str]) -> tuple[Process, str]:
    port = free_port()
    conf = nginx_config(work, hosts, port)
    check = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(work)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = start("nginx", ["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"], {**os.environ}, work)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(base + "/healthz", timeout=1).ok, 30, "nginx")
    return process, base


@dataclass
class County:
    env: dict
    nginx: str
    hosts: dict[str, str]
    processes: list[Process] = field(default_factory=list)
    s3_endpoint: str = ""
    bucket: str = ""

    def via(self, host: str) -> dict[str, str]:
        """Headers that pin a request through nginx to one API host."""
        return {"X-Test-Host": host}
