"""Issue 13 item 3: photos in an S3-compatible object store shared by every API host. Against a
real S3 server (moto's, over HTTP on a local port): uploads land in the bucket and read back
through both photo views; a rolled-back transaction leaves no object; a store that is down is a
503 and no credential; the doctor probes the bucket; backup and restore round-trip."""
import io
import socket
import threading
import time
from pathlib import Path

import pytest
from flask import has_request_context, request
from PIL import Image
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from app.core.objectstore import S3Store, store_for
from app.credentials.models import Credential
from app.doctor import FATAL, OK, examine
from tests.conftest import error_code
from tests.markets.factories import jpeg_bytes
from tests.s3server import S3Bucket, boto3_client, start_moto_process


def _photo_keys(bucket: S3Bucket, key: str) -> set[str]:
    return {bucket.key(f"photos/{key[:2]}/{key}.jpg"), bucket.key(f"photos/{key[:2]}/{key}.t.jpg")}


def _credential(db, response) -> Credential:
    assert response.status_code == 201, response.get_json()
    return db.session.get(Credential, response.get_json()["id"])


def test_an_upload_is_stored_in_the_bucket_and_served_byte_identical_by_both_views(s3_store, shop, client, db, app):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential = _credential(db, shop.upload(login, merchant_id, long_term=True, photo=jpeg_bytes(size=(900, 600))))
    objects = s3_store.objects()
    assert set(objects) == _photo_keys(s3_store, credential.photo_key)
    assert not list(Path(app.config["UPLOAD_DIR"]).rglob(f"{credential.photo_key}*"))  # nothing on local disk
    photo = objects[s3_store.key(f"photos/{credential.photo_key[:2]}/{credential.photo_key}.jpg")]
    thumb = objects[s3_store.key(f"photos/{credential.photo_key[:2]}/{credential.photo_key}.t.jpg")]
    assert Image.open(io.BytesIO(photo)).size == (900, 600) and max(Image.open(io.BytesIO(thumb)).size) == 480

    own = client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers)
    assert own.status_code == 200 and own.mimetype == "image/jpeg" and own.data == photo
    assert own.headers["Cache-Control"] == "private, no-store"
    assert client.get(f"/api/v1/credentials/{credential.id}/photo?thumb=true", headers=manager.headers).data == thumb

    shop.verify(manager, credential.id)
    token = stalls[0]["token"]
    url = f"/api/v1/public/stalls/{token}/photos/{credential.photo_key}.jpg"
    public = client.get(url)
    assert public.status_code == 200 and public.data == photo and public.content_length == len(photo)
    assert public.headers["Cache-Control"] == "public, max-age=300"
    assert public.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(url + "?thumb=true").data == thumb
    # The ETag is the store's, the same on every host: a revalidation is a 304 without the body.
    assert public.headers["ETag"] and public.headers["Last-Modified"]
    again = client.get(url, headers={"If-None-Match": public.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    # Still access-checked: another stall's token, or a guessed key, is not served.
    assert client.get(url.replace(token, stalls[1]["token"])).status_code == 404
    assert error_code(client.get(f"/api/v1/public/stalls/{token}/photos/{'0' * 32}.jpg")) == "PHOTO_NOT_FOUND"


def test_a_missing_object_is_photo_not_found(s3_store, shop, client, db):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential = _credential(db, shop.upload(login, merchant_id, long_term=True))
    for key in _photo_keys(s3_store, credential.photo_key):
        s3_store.client().delete_object(Bucket=s3_store.bucket, Key=key)
    response = client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers)
    assert response.status_code == 404 and error_code(response) == "PHOTO_NOT_FOUND"


def test_a_request_failing_after_the_photo_was_stored_leaves_no_object(s3_store, shop, db):
    from app.core.errors import APIError
    from app.credentials import services

    market, manager, stalls, login, merchant_id = shop.held_stall()

    def fail_after_storing(**stalls):
        raise APIError(code="CONFLICT")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services.badge_cache, "changed", fail_after_storing)
        response = shop.upload(login, merchant_id, long_term=True)
    assert response.status_code == 409
    assert s3_store.objects() == {} and db.session.query(Credential).count() == 0
    credential = _credential(db, shop.upload(login, merchant_id, long_term=True))
    assert set(s3_store.objects()) == _photo_keys(s3_store, credential.photo_key)  # kept once committed


def test_a_failed_commit_removes_the_objects(s3_store, shop, db):
    """The objects are written before the commit; the commit itself failing (the database
    went away at that moment) rolls back, and they go."""
    market, manager, stalls, login, merchant_id = shop.held_stall()

    def database_gone(session):
        if has_request_context() and request.method == "POST" and request.path.endswith("/credentials"):
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection unexpectedly"))

    event.listen(Session, "before_commit", database_gone)
    try:
        response = shop.upload(login, merchant_id, long_term=True)
    finally:
        event.remove(Session, "before_commit", database_gone)
    assert response.status_code == 503 and error_code(response) == "SERVICE_UNAVAILABLE"
    assert s3_store.objects() == {}
    assert db.session.query(Credential).count() == 0


class _Answering503:
    """An S3 endpoint in trouble: every request is answered 503 SlowDown."""

    def __init__(self) -> None:
        def app(environ, start_response):
            body = b'<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>'
            return Response(body, status=503, content_type="application/xml")(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(params=["refused", "timeout", "http-503"])
def store_down(request, s3_store, app, monkeypatch):
    """Points the app's store at an endpoint that refuses connections, accepts and never
    answers, or answers 503 (1 s timeouts). Yields the time an outage may take to answer: two
    attempts and a short back-off, not a hung worker."""
    monkeypatch.setitem(app.config, "STORAGE_S3_READ_TIMEOUT", 1)
    monkeypatch.setitem(app.config, "STORAGE_S3_CONNECT_TIMEOUT", 1)
    if request.param == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: nobody listens
        monkeypatch.setitem(app.config, "STORAGE_S3_ENDPOINT_URL", url)
        yield 6
    elif request.param == "timeout":
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connections; nobody ever reads or answers
        monkeypatch.setitem(app.config, "STORAGE_S3_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        yield 6
        silent.close()
    else:
        server = _Answering503()
        monkeypatch.setitem(app.config, "STORAGE_S3_ENDPOINT_URL", server.url)
        yield 6
        server.close()


def test_an_upload_while_the_store_is_down_is_503_and_writes_no_credential(store_down, shop, db):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    started = time.monotonic()
    response = shop.upload(login, merchant_id, long_term=True)
    assert time.monotonic() - started < store_down  # a quick answer, not a hung worker
    assert response.status_code == 503 and error_code(response) == "STORAGE_UNAVAILABLE"
    assert "稍后" in response.get_json()["error"]["message"]
    assert response.headers["Retry-After"]
    assert db.session.query(Credential).count() == 0


def test_a_photo_read_while_the_store_is_down_is_503(s3_store, shop, client, db, app, monkeypatch):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential = _credential(db, shop.upload(login, merchant_id, long_term=True))
    shop.verify(manager, credential.id)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setitem(app.config, "STORAGE_S3_ENDPOINT_URL", closed)
    for response in (client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers),
                     client.get(f"/api/v1/public/stalls/{stalls[0]['token']}/photos/{credential.photo_key}.jpg")):
        assert response.status_code == 503 and error_code(response) == "STORAGE_UNAVAILABLE"


def test_the_client_is_built_once_per_process_and_configuration(s3_store, app, monkeypatch):
    store = store_for(app)
    assert isinstance(store, S3Store) and store_for(app) is store and store.client() is store.client()
    monkeypatch.setitem(app.config, "STORAGE_URL", None)
    assert not isinstance(store_for(app), S3Store)  # the local directory, as without any setting


def _store_finding(app):
    [finding] = [f for f in examine(app) if f.check in ("照片存储", "上传目录")]
    return finding


def test_doctor_probes_the_bucket_and_finds_a_missing_one_fatal(s3_store, app, monkeypatch):
    finding = _store_finding(app)
    assert finding.level == OK and s3_store.bucket in finding.message
    assert s3_store.objects() == {}  # the probe object was deleted again
    monkeypatch.setitem(app.config, "STORAGE_URL", f"s3://{s3_store.bucket}-missing/xgz")
    finding = _store_finding(app)
    assert finding.level == FATAL and "NoSuchBucket" in finding.message and "存储桶" in finding.message
    monkeypatch.setitem(app.config, "STORAGE_URL", "ftp://photos")
    finding = _store_finding(app)
    assert finding.level == FATAL and "STORAGE_URL" in finding.message


def test_doctor_finds_an_unreachable_store_fatal_and_the_cli_exits_non_zero(s3_store, app, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setitem(app.config, "STORAGE_S3_ENDPOINT_URL", closed)
    assert _store_finding(app).level == FATAL
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1 and "✗ 照片存储" in result.output


def test_backup_then_restore_into_a_fresh_bucket_round_trips(s3_store, moto_s3, shop, client, db, app, monkeypatch,
                                                            tmp_path):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = _credential(db, shop.upload(login, merchant_id, long_term=True, photo=jpeg_bytes(color=(1, 2, 3))))
    permit = _credential(db, shop.upload(login, merchant_id, kind="food_business", number="JY14504030012345",
                                         photo=jpeg_bytes(color=(200, 10, 10))))
    original = s3_store.objects()
    assert len(original) == 4
    runner = app.test_cli_runner()
    backup_dir = tmp_path / "photos-backup"

    first = runner.invoke(args=["photos", "backup", str(backup_dir)])
    assert first.exit_code == 0, first.output
    assert "共 4 个照片文件" in first.output and "新复制 4 个" in first.output and "跳过 0 个" in first.output
    files = {p.relative_to(backup_dir).as_posix(): p.read_bytes() for p in backup_dir.rglob("*") if p.is_file()}
    assert files == {key.removeprefix(s3_store.prefix + "/"): data for key, data in original.items()}
    again = runner.invoke(args=["photos", "backup", str(backup_dir)])
    assert again.exit_code == 0 and "新复制 0 个" in again.output and "跳过 4 个" in again.output

    # The drill: a fresh, empty store (another bucket, no prefix), restored from the backup.
    fresh = S3Bucket(moto_s3, prefix="").create()
    try:
        for name, value in fresh.settings.items():
            monkeypatch.setitem(app.config, name, value)
        assert client.get(f"/api/v1/credentials/{licence.id}/photo", headers=login.headers).status_code == 404
        restored = runner.invoke(args=["photos", "restore", str(backup_dir)])
        assert restored.exit_code == 0, restored.output
        assert "共 4 个照片文件" in restored.output and "4 个" in restored.output and "跳过 0 个" in restored.output
        assert fresh.objects() == files
        for credential in (licence, permit):
            response = client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers)
            key = f"photos/{credential.photo_key[:2]}/{credential.photo_key}.jpg"
            assert response.status_code == 200 and response.data == files[key]
        repeat = runner.invoke(args=["photos", "restore", str(backup_dir)])
        assert repeat.exit_code == 0 and "跳过 4 个" in repeat.output
    finally:
        fresh.destroy()


def test_local_photos_move_into_the_bucket_with_restore(s3_store, shop, client, db, app, monkeypatch):
    """Moving an installation from one host's disk to the shared store: restore UPLOAD_DIR."""
    settings = dict(s3_store.settings)
    monkeypatch.setitem(app.config, "STORAGE_URL", None)
    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential = _credential(db, shop.upload(login, merchant_id, long_term=True))
    local = client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers).data
    monkeypatch.setitem(app.config, "STORAGE_URL", settings["STORAGE_URL"])
    result = app.test_cli_runner().invoke(args=["photos", "restore", app.config["UPLOAD_DIR"]])
    assert result.exit_code == 0, result.output
    assert _photo_keys(s3_store, credential.photo_key) <= set(s3_store.objects())
    assert client.get(f"/api/v1/credentials/{credential.id}/photo", headers=login.headers).data == local


def test_restore_refuses_a_directory_without_photos(s3_store, app, tmp_path):
    result = app.test_cli_runner().invoke(args=["photos", "restore", str(tmp_path)])
    assert result.exit_code != 0 and "没有照片" in result.output


def test_moto_runs_as_a_separate_process_for_multi_host_tests():
    with start_moto_process() as server:
        client = boto3_client(server.endpoint_url)
        client.create_bucket(Bucket="two-hosts")
        client.put_object(Bucket="two-hosts", Key="a", Body=b"shared")
        assert boto3_client(server.endpoint_url).get_object(Bucket="two-hosts", Key="a")["Body"].read() == b"shared"
    assert server.process.poll() is not None
