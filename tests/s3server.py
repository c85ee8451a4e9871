"""A real S3-compatible server for tests: moto's server, no cloud needed.

In pytest (fixtures, imported by tests/conftest.py):
  - `moto_s3`: one moto server per test session, in a thread, on a free port; its endpoint URL.
  - `s3_bucket`: a fresh, empty bucket on it per test (an `S3Bucket`: endpoint, bucket, prefix,
    the app settings and environment variables that point at it, a boto3 client for checks).
  - `s3_store`: `s3_bucket` with the test's app already storing its photos there.

Outside pytest (several API processes sharing one store, a manual drill), moto runs as its own
process: `start_moto_process()` returns a `MotoProcess` (endpoint_url, stop()); or by hand:
`python -m moto.server -H 127.0.0.1 -p 5070`. moto keeps everything in memory: a stopped
server forgets its buckets."""
from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

# moto accepts any credentials; these keep boto3 from looking for real ones.
ACCESS_KEY_ID = "moto-test-key"
SECRET_ACCESS_KEY = "moto-test-secret"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(endpoint_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(endpoint_url + "/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # an HTTP answer of any kind: the server is up
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto server at {endpoint_url} did not answer within {timeout} s")
            time.sleep(0.1)


@dataclass
class MotoProcess:
    process: subprocess.Popen
    endpoint_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "MotoProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_moto_process(port: int | None = None, host: str = "127.0.0.1", timeout: float = 30) -> MotoProcess:
    """moto's S3 server as a separate process (`python -m moto.server`), answering when this
    returns. Use as a context manager, or call stop()."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MotoProcess(process, f"http://{host}:{port}")
    try:
        wait_until_serving(server.endpoint_url, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def boto3_client(endpoint_url: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY, config=Config(s3={"addressing_style": "path"}))


@dataclass
class S3Bucket:
    """A bucket on a test S3 server and the settings that make the app store photos in it."""
    endpoint_url: str
    bucket: str = field(default_factory=lambda: f"xgz-test-{secrets.token_hex(6)}")
    prefix: str = "xgz"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def settings(self) -> dict:
        """App config values (tests: monkeypatch.setitem(app.config, …))."""
        return {"STORAGE_URL": self.url, "STORAGE_S3_ENDPOINT_URL": self.endpoint_url, "STORAGE_S3_REGION": REGION,
                "STORAGE_S3_ADDRESSING_STYLE": "path", "STORAGE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "STORAGE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}

    @property
    def env(self) -> dict[str, str]:
        """The same as environment variables, for API processes (gunicorn, flask)."""
        return {name: str(value) for name, value in self.settings.items()}

    def client(self):
        return boto3_client(self.endpoint_url)

    def create(self) -> "S3Bucket":
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket: full key -> content."""
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                found[item["Key"]] = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return found

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def destroy(self) -> None:
        client = self.client()
        for key in self.objects():
            client.delete_object(Bucket=self.bucket, Key=key)
        client.delete_bucket(Bucket=self.bucket)


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server in a thread of this process, on a free port: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_s3):
    bucket = S3Bucket(moto_s3).create()
    yield bucket
    bucket.destroy()


@pytest.fixture
def s3_store(app, s3_bucket, monkeypatch):
    """The test's app stores its photos in a fresh bucket of the moto server (returned)."""
    for name, value in s3_bucket.settings.items():
        monkeypatch.setitem(app.config, name, value)
    return s3_bucket
