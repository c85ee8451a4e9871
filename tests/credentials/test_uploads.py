"""R6: uploads are size-limited before the view, sniffed, bomb-checked before decoding, refused
when they carry markup, and stored re-encoded without EXIF under random names outside the web root."""
import io
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app.credentials.models import Credential
from tests.conftest import error_code
from tests.markets.factories import jpeg_bytes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width=30000, height=30000) -> bytes:
    """A valid-looking PNG declaring width×height grey pixels; the IDAT holds a few rows of a
    highly compressible stream, so the file is tiny while decoding would need ~900 MB."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * ((width + 1) * 64), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'


def test_valid_photo_is_stored_reencoded_without_exif(shop, db, app):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:03:01 09:00:00"
    gps = {1: "N", 2: (23.0, 28.0, 37.0), 3: "E", 4: (111.0, 18.0, 5.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    original = jpeg_bytes(size=(320, 240), exif=exif)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the upload does carry GPS
    response = shop.upload(login, merchant_id, photo=original, filename="../../etc/passwd.jpg")
    assert response.status_code == 201, response.get_json()
    credential = db.session.get(Credential, response.get_json()["id"])
    root = Path(app.config["UPLOAD_DIR"]).resolve()
    stored = list(root.rglob(f"{credential.photo_key}*.jpg"))
    assert len(stored) == 2  # photo and thumbnail
    for path in stored:
        assert path.resolve().is_relative_to(root)
        assert "passwd" not in path.name and credential.photo_key in path.name
        reopened = Image.open(path)
        assert reopened.format == "JPEG"
        assert len(reopened.getexif()) == 0
        assert "exif" not in reopened.info
        assert b"PhoneMaker" not in path.read_bytes()
    static = Path(app.static_folder or "/nonexistent").resolve()
    assert not root.is_relative_to(static)
    assert len(credential.photo_key) == 32


def test_over_the_request_limit_is_413_before_the_view(shop, app, monkeypatch):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 200_000)
    from miniprogram_api import credentials as view_module
    called = []
    monkeypatch.setattr(view_module.services, "submit_credential", lambda *a, **k: called.append(1))
    response = shop.upload(login, merchant_id, photo=b"\xff\xd8\xff" + os.urandom(300_000))
    assert response.status_code == 413 and error_code(response) == "PAYLOAD_TOO_LARGE"
    assert called == []


def test_over_the_per_file_limit_is_413(shop, monkeypatch):
    import app.core.storage as storage
    import miniprogram_api.credentials as view_module

    market, manager, stalls, login, merchant_id = shop.held_stall()
    monkeypatch.setattr(view_module, "MAX_PHOTO_BYTES", 50_000)
    response = shop.upload(login, merchant_id, photo=jpeg_bytes() + b"\x00" * 60_000)
    assert response.status_code == 413 and error_code(response) == "PHOTO_TOO_LARGE"
    assert storage.MAX_PHOTO_BYTES == 5 * 1024 * 1024


@pytest.mark.parametrize("payload, filename, content_type, code", [
    (b"%PDF-1.4 not an image at all" * 10, "licence.jpg", "image/jpeg", "PHOTO_NOT_IMAGE"),
    (SVG, "licence.png", "image/png", "PHOTO_NOT_IMAGE"),
    (b"GIF89a" + b"\x00" * 64, "licence.jpg", "image/jpeg", "PHOTO_NOT_IMAGE"),
    # JPEG that is also an HTML page (markup in a comment segment, then trailing HTML).
    (None, "licence.jpg", "image/jpeg", "PHOTO_SUSPICIOUS"),
    # JPEG with a ZIP archive appended (a GIFAR-style polyglot).
    (jpeg_bytes() + b"PK\x03\x04" + b"\x00" * 40, "licence.jpg", "image/jpeg", "PHOTO_SUSPICIOUS"),
    # Truncated JPEG.
    (jpeg_bytes()[:200] + b"\xff\xd9", "licence.jpg", "image/jpeg", "PHOTO_INVALID"),
])
def test_non_images_svg_and_polyglots_are_refused(shop, db, payload, filename, content_type, code):
    if payload is None:
        image = jpeg_bytes()
        comment = b"<html><script>alert(document.cookie)</script></html>"
        payload = image[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + image[2:]
    market, manager, stalls, login, merchant_id = shop.held_stall()
    response = shop.upload(login, merchant_id, photo=payload, filename=filename, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert error_code(response) == code
    assert db.session.query(Credential).count() == 0


def test_decompression_bomb_is_refused_with_bounded_memory(shop, db):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    bomb = png_bomb()
    assert len(bomb) < 20_000
    tracemalloc.start()
    try:
        response = shop.upload(login, merchant_id, photo=bomb, filename="x.png", content_type="image/png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422 and error_code(response) == "PHOTO_TOO_MANY_PIXELS"
    assert peak < 20 * 1024 * 1024  # decoding would need 900 MB
    assert db.session.query(Credential).count() == 0


def test_sanitizer_keeps_process_memory_bounded_on_a_bomb(tmp_path):
    """tracemalloc does not see Pillow's C allocations, so also measure the whole process: a
    fresh interpreter checks the bomb and reports its peak RSS."""
    bomb_file = tmp_path / "bomb.png"
    bomb_file.write_bytes(png_bomb())
    script = (
        "import resource, sys\n"
        "from app.core.storage import sanitize_image\n"
        "from app.core.errors import APIError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    sanitize_image(open(sys.argv[1], 'rb').read())\n"
        "    print('accepted')\n"
        "except APIError as exc:\n"
        "    print(exc.code)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(bomb_file)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=60)
    code, growth_kb = result.stdout.split()
    assert code == "PHOTO_TOO_MANY_PIXELS", result.stderr
    assert int(growth_kb) < 50 * 1024  # KB: far below the 900 MB a decode would take


def test_large_jpeg_is_decoded_at_reduced_scale(shop, db, app):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    big = jpeg_bytes(size=(5000, 3000))
    response = shop.upload(login, merchant_id, photo=big)
    assert response.status_code == 201
    key = db.session.get(Credential, response.get_json()["id"]).photo_key
    stored = next(Path(app.config["UPLOAD_DIR"]).rglob(f"{key}.jpg"))
    assert max(Image.open(stored).size) <= 2048


def test_png_with_transparency_is_accepted(shop):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 30), (10, 20, 30, 100)).save(buffer, format="PNG")
    response = shop.upload(login, merchant_id, photo=buffer.getvalue(), filename="a.png", content_type="image/png")
    assert response.status_code == 201


def test_idempotency_key_replays_the_upload(shop, db, client):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    market, manager, stalls, login, merchant_id = shop.held_stall()
    photo = jpeg_bytes()

    def send(boundary: str, number: str = "91350100M000100Y43"):
        # A client that rebuilds the form for a retry picks a new multipart boundary.
        boundary, body = encode_multipart({
            "kind": "business_licence", "number": number, "issuer": "万秀区市场监管局",
            "long_term": "true",
            "photo": FileStorage(io.BytesIO(photo), "p.jpg", content_type="image/jpeg")}, boundary=boundary)
        return client.post(f"/api/v1/merchants/{merchant_id}/credentials", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           headers={**login.headers, "Idempotency-Key": "up-1"})

    first = send("first-boundary")
    second = send("second-boundary")
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert db.session.query(Credential).count() == 1
    # The same key with other content is refused, not replayed.
    other = send("third-boundary", number="91110000802100433B")
    assert other.status_code == 422 and error_code(other) == "IDEMPOTENCY_KEY_REUSED"
    assert db.session.query(Credential).count() == 1


def test_validity_rules(shop):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    response = shop.upload(login, merchant_id, valid_until=None)
    assert error_code(response) == "CREDENTIAL_VALIDITY_INVALID"
    response = shop.upload(login, merchant_id, number="91110000802100433B")
    assert error_code(response) == "LICENCE_USCC_MISMATCH"
    response = shop.upload(login, merchant_id, number="91350100M000100Y44")
    assert error_code(response) == "USCC_INVALID"
    response = shop.upload(login, merchant_id, kind="food_business", number="JY1", valid_until="2023-01-01")
    assert error_code(response) == "CREDENTIAL_VALIDITY_INVALID"


def test_a_rolled_back_upload_leaves_no_photo_behind(shop, app, monkeypatch):
    """The photo is written inside the request; when anything after it fails, the transaction
    rolls back and the files go with it."""
    from pathlib import Path

    from app.core.errors import APIError
    from app.credentials import services

    market, manager, stalls, login, merchant_id = shop.held_stall()
    photos = Path(app.config["UPLOAD_DIR"]) / "photos"
    before = set(photos.rglob("*.jpg")) if photos.exists() else set()

    def fail_after_storing(**stalls):
        raise APIError(code="CONFLICT")

    monkeypatch.setattr(services.badge_cache, "changed", fail_after_storing)
    response = shop.upload(login, merchant_id, long_term=True)
    assert response.status_code == 409
    after = set(photos.rglob("*.jpg")) if photos.exists() else set()
    assert after == before
    monkeypatch.undo()
    assert shop.upload(login, merchant_id, long_term=True).status_code == 201
    assert len(set(photos.rglob("*.jpg")) - before) == 2  # photo and thumbnail, kept once committed
