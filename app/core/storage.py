"""Uploaded photos: checked, re-encoded and stored under UPLOAD_DIR (outside the web root) with
random names; served only through views that check who may see them.

The checks run from cheapest to dearest and refuse before any pixel is decoded when they can:
  1. size (MAX_CONTENT_LENGTH refuses the request before the view; here, a per-file limit),
  2. magic bytes (JPEG or PNG only; the file name and content type are never trusted),
  3. trailing data and embedded markup (polyglots: HTML/SVG/script/ZIP riding on an image),
  4. the header's declared size against a pixel budget (decompression bombs), via Image.open,
     which reads only the header,
  5. decoding (JPEG decoded at reduced scale via draft()), then re-encoding the pixels alone into
     a fresh image, so EXIF (GPS included), ICC, comments and any payload are gone."""
from __future__ import annotations

import io
import os
import re
import secrets
import warnings
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.errors import APIError, register_codes

register_codes({
    "PHOTO_TOO_LARGE": (413, "照片过大，请压缩后重新上传"),
    "PHOTO_NOT_IMAGE": (415, "只能上传 JPEG 或 PNG 格式的照片"),
    "PHOTO_INVALID": (422, "照片已损坏或格式不正确，请重新拍摄后上传"),
    "PHOTO_TOO_MANY_PIXELS": (422, "照片分辨率过高，请压缩后重新上传"),
    "PHOTO_SUSPICIOUS": (422, "照片中含有多余的数据，请直接拍照后上传"),
    "PHOTO_NOT_FOUND": (404, "照片不存在"),
})

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 30_000_000  # a 6000×5000 phone photo; a bomb declares far more
MAX_SIDE = 2048  # stored photo, long side
THUMB_SIDE = 480  # thumbnails on the public page
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
# Markup or archives that have no business inside a photo (polyglot files).
_SUSPICIOUS = re.compile(rb"<\s*(script|svg|html|iframe|object|embed|\?php|!doctype)|javascript:|PK\x03\x04",
                         re.IGNORECASE)
_KEY = re.compile(r"^[0-9a-f]{32}$")


def refuse(code: str, **details) -> APIError:
    return APIError(code=code, details=details or None)


def read_limited(stream, limit: int = MAX_PHOTO_BYTES) -> bytes:
    """Read at most `limit` bytes; 413 if there is more (never buffers more than limit + 1)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise refuse("PHOTO_TOO_LARGE", max_bytes=limit)
    return data


def sniff(data: bytes) -> str:
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    raise refuse("PHOTO_NOT_IMAGE")


# Markup hides in metadata (comments, EXIF, text chunks), which phones write before the image
# data. Scanning only this head keeps compressed pixel data, where any 4-byte pattern turns up
# by chance in about one large photo in a thousand, from refusing honest uploads; whatever a
# file carries is dropped by re-encoding anyway, and trailing data is refused below.
_SCANNED_HEAD = 256 * 1024


def _check_envelope(data: bytes, kind: str) -> None:
    tail = data.rstrip(b"\x00")
    ends_right = tail.endswith(b"\xff\xd9") if kind == "JPEG" else data.endswith(PNG_END)
    if not ends_right or _SUSPICIOUS.search(data, 0, _SCANNED_HEAD):
        raise refuse("PHOTO_SUSPICIOUS")


def _open_header(data: bytes, kind: str) -> Image.Image:
    """Parse the header only and enforce the pixel budget before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse("PHOTO_TOO_MANY_PIXELS", max_pixels=MAX_PIXELS)
    except Exception:
        raise refuse("PHOTO_INVALID")
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        image.close()
        raise refuse("PHOTO_TOO_MANY_PIXELS", max_pixels=MAX_PIXELS)
    return image


def sanitize_image(data: bytes) -> Image.Image:
    """A clean RGB image (no metadata at all) from untrusted bytes, or a 4xx APIError."""
    kind = sniff(data)
    _check_envelope(data, kind)
    image = _open_header(data, kind)
    try:
        if kind == "JPEG":
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4, 1/8 scale when large
        image.load()
        image = ImageOps.exif_transpose(image)  # keep the photo upright once EXIF is gone
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, "white")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            image = flat
        else:
            image = image.convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        # Pixels only: a fresh image carries no info dict, so no EXIF/GPS/ICC/comment survives.
        return Image.frombytes("RGB", image.size, image.tobytes())
    except APIError:
        raise
    except Exception:
        raise refuse("PHOTO_INVALID")


def upload_root() -> Path:
    from flask import current_app

    return Path(current_app.config["UPLOAD_DIR"])


def _path(key: str, thumb: bool) -> Path:
    if not _KEY.match(key or ""):
        raise refuse("PHOTO_NOT_FOUND")
    return upload_root() / "photos" / key[:2] / (f"{key}.t.jpg" if thumb else f"{key}.jpg")


def _write_atomic(path: Path, image: Image.Image, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    image.save(tmp, format="JPEG", quality=quality, optimize=True)
    os.replace(tmp, path)


def store_photo(data: bytes) -> str:
    """Sanitise and store; returns the random storage key (32 hex chars, 128 bits). The files
    belong to the current transaction: if it rolls back, they are removed (no orphans)."""
    image = sanitize_image(data)
    key = secrets.token_hex(16)
    paths = (_path(key, thumb=False), _path(key, thumb=True))
    _pending_files().extend(paths)
    _write_atomic(paths[0], image, quality=85)
    thumb = image.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    _write_atomic(paths[1], thumb, quality=75)
    return key


def _pending_files() -> list[Path]:
    from app.extensions import db

    return db.session.info.setdefault("written_files", [])


@event.listens_for(Session, "after_commit")
def _keep_committed_files(session) -> None:
    session.info.pop("written_files", None)


@event.listens_for(Session, "after_rollback")
def _remove_rolled_back_files(session) -> None:
    for path in session.info.pop("written_files", ()):
        path.unlink(missing_ok=True)


def photo_path(key: str, thumb: bool = False) -> Path:
    path = _path(key, thumb)
    if not path.is_file():
        raise refuse("PHOTO_NOT_FOUND")
    return path
