"""Where stored files live: a local directory (UPLOAD_DIR, one host) or an S3-compatible object
store (Aliyun OSS, Tencent COS, MinIO; STORAGE_URL=s3://bucket/prefix) shared by every API host.

The interface is small on purpose (put, get, delete, exists, listing for backups) and speaks in
keys relative to the store's root ("photos/ab/ab….jpg"), the same in both backends, so a backup
of one restores into the other. Callers see two failures only: `ObjectMissing` (the key is not
there) and `StorageUnavailable`, an APIError answered as 503 (refused, timed out, 5xx, or a
misconfigured store): an outage of the store is never a 500.

One backend object per process and configuration (`current_store`), built lazily: the boto3
client is thread-safe once built, but building it is not, and a client must not cross a fork
(gunicorn's master may examine the configuration before its workers fork)."""
from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Protocol
from urllib.parse import urlparse

from app.core.errors import APIError, register_codes

log = logging.getLogger(__name__)

register_codes({
    "STORAGE_UNAVAILABLE": (503, "照片存储服务暂时不可用，请稍后重试"),
})
RETRY_AFTER_SECONDS = 10  # a store outage is usually a network blip or a restart
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*$")


class ObjectMissing(KeyError):
    """No object under this key."""


class StorageUnavailable(APIError):
    code = "STORAGE_UNAVAILABLE"

    def __init__(self, reason: str) -> None:
        # The reason is for the log (and the doctor); the client gets the Chinese message.
        super().__init__(details={"retry_after_seconds": RETRY_AFTER_SECONDS})
        self.reason = reason


class StorageMisconfigured(ValueError):
    """STORAGE_URL or its settings cannot describe a store (message in Chinese, for operators)."""


@dataclass(frozen=True)
class StoredObject:
    """An object read back: its bytes (object store) or its file (local directory, so the view
    can stream it and derive the ETag from the file as it always has)."""
    size: int
    data: bytes | None = None
    path: Path | None = None
    etag: str | None = None
    last_modified: datetime | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


class ObjectStore(Protocol):
    description: str  # for operators: where the objects are

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str) -> StoredObject: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]: ...  # (key, size), any order


def _checked(key: str) -> str:
    """Keys are built by the code, never taken from a request; refuse anything that could step
    outside the root all the same (a restore reads names from a directory)."""
    if not _SAFE_KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid object key: {key!r}")
    return key


class LocalStore:
    """Files under a directory; writes are atomic (a temporary file renamed into place)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.description = f"本地目录 {self.root}"

    def path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:  # disk full, permissions: the store is down for this request
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # the directory itself is what failed (not a directory, unmounted)
                pass
            log.error("local store write failed: %s", exc)
            raise StorageUnavailable(f"{type(exc).__name__}: {exc.strerror or exc}")

    def get(self, key: str) -> StoredObject:
        path = self.path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(key)
        except OSError as exc:
            raise StorageUnavailable(f"{type(exc).__name__}: {exc.strerror or exc}")
        if not path.is_file():
            raise ObjectMissing(key)
        return StoredObject(size=size, path=path)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        for directory, _, names in os.walk(base):
            for name in names:
                path = Path(directory) / name
                yield path.relative_to(self.root).as_posix(), path.stat().st_size


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    addressing_style: str
    access_key_id: str | None
    secret_access_key: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int


# Error codes of a missing key; a HEAD answers a bare 404 without a code of its own.
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """An S3-compatible bucket, optionally under a prefix."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        location = f"s3://{settings.bucket}/{settings.prefix}".rstrip("/")
        self.description = f"对象存储 {location}（{settings.endpoint_url or 'AWS'}）"
        self._client = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()

    def client(self):
        """boto3 client of this process, built on first use."""
        if self._client is None or self._client_pid != os.getpid():
            with self._lock:
                if self._client is None or self._client_pid != os.getpid():
                    self._client = self._build_client()
                    self._client_pid = os.getpid()
        return self._client

    def _build_client(self):
        import boto3
        from botocore.config import Config as BotoConfig

        s = self.settings
        config = BotoConfig(
            region_name=s.region,
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            # Few, quick retries: an outage should answer the user within seconds, not minutes.
            retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
            s3={"addressing_style": s.addressing_style},
            # botocore ≥ 1.36 adds CRC checksums (and aws-chunked bodies) to every upload by
            # default, which OSS, COS and older MinIO refuse; send them only where S3 requires.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=20,
        )
        # A session of our own: boto3's default session is not safe to build clients from in
        # several threads.
        session = boto3.session.Session(aws_access_key_id=s.access_key_id,
                                        aws_secret_access_key=s.secret_access_key, region_name=s.region)
        return session.client("s3", endpoint_url=s.endpoint_url, config=config)

    def _key(self, key: str) -> str:
        _checked(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unavailable(self, exc: Exception, action: str) -> StorageUnavailable:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = f"{error.get('Code')} (HTTP {status}) {error.get('Message') or ''}".strip()
        else:
            reason = f"{type(exc).__name__}: {exc}"
        log.error("object store %s failed (bucket %s): %s", action, self.bucket, reason)
        return StorageUnavailable(reason)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc, "put")

    def get(self, key: str) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self._key(key))
            data = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectMissing(key)
            raise self._unavailable(exc, "get")
        except BotoCoreError as exc:
            raise self._unavailable(exc, "get")
        return StoredObject(size=len(data), data=data, etag=(response.get("ETag") or "").strip('"') or None,
                            last_modified=response.get("LastModified"))

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc, "delete")

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise self._unavailable(exc, "head")
        except BotoCoreError as exc:
            raise self._unavailable(exc, "head")

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        from botocore.exceptions import BotoCoreError, ClientError

        root = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                            Prefix=root + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"][len(root):], item["Size"]
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc, "list")


ADDRESSING_STYLES = ("auto", "virtual", "path")


def s3_settings(config) -> S3Settings | None:
    """The S3 settings of a configuration, or None for the local directory."""
    url = (config.get("STORAGE_URL") or "").strip()
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageMisconfigured(f"STORAGE_URL 格式不对（{url}）：应为 s3://存储桶名/可选前缀，或不设置（使用本地 UPLOAD_DIR）")
    style = config.get("STORAGE_S3_ADDRESSING_STYLE") or "auto"
    if style not in ADDRESSING_STYLES:
        raise StorageMisconfigured(f"STORAGE_S3_ADDRESSING_STYLE 只能是 {' / '.join(ADDRESSING_STYLES)}（现为 {style}）")
    return S3Settings(
        bucket=parsed.netloc, prefix=parsed.path.strip("/"),
        endpoint_url=config.get("STORAGE_S3_ENDPOINT_URL") or None,
        region=config.get("STORAGE_S3_REGION") or None, addressing_style=style,
        access_key_id=config.get("STORAGE_S3_ACCESS_KEY_ID") or None,
        secret_access_key=config.get("STORAGE_S3_SECRET_ACCESS_KEY") or None,
        connect_timeout=float(config.get("STORAGE_S3_CONNECT_TIMEOUT", 3)),
        read_timeout=float(config.get("STORAGE_S3_READ_TIMEOUT", 10)),
        max_attempts=int(config.get("STORAGE_S3_MAX_ATTEMPTS", 2)),
    )


_build_lock = threading.Lock()


def store_for(app) -> ObjectStore:
    """The app's store, built once per configuration (a test may repoint the app)."""
    settings = s3_settings(app.config)
    wanted = settings or ("local", app.config["UPLOAD_DIR"])
    built = app.extensions.get("object_store")
    if built is not None and built[0] == wanted:
        return built[1]
    with _build_lock:
        built = app.extensions.get("object_store")
        if built is None or built[0] != wanted:
            store = S3Store(settings) if settings else LocalStore(app.config["UPLOAD_DIR"])
            built = (wanted, store)
            app.extensions["object_store"] = built
    return built[1]


def current_store() -> ObjectStore:
    from flask import current_app

    try:
        return store_for(current_app._get_current_object())
    except StorageMisconfigured as exc:  # `flask doctor` says so at start; a request gets a 503
        log.error("%s", exc)
        raise StorageUnavailable(str(exc))
