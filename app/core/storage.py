"""Uploaded photos: checked, re-encoded and stored with random names in the configured store
(UPLOAD_DIR outside the web root, or an S3-compatible bucket: app.core.objectstore); served only
through views that check who may see them.

The checks run from cheapest to dearest and refuse before any pixel is decoded when they can:
  1. size (MAX_CONTENT_LENGTH refuses the request before the view; here, a per-file limit),
  2. magic bytes (JPEG or PNG only; the file name and content type are never trusted),
  3. trailing data and embedded markup (polyglots: HTML/SVG/script/ZIP riding on an image),
  4. the header's declared shape (decompression bombs, including the thin ones: 1 × 30,000,000
     packs into 57 KB): each side, the aspect ratio, the pixel count, the bit depth and the
     colour mode, read by Image.open (header only) and, for PNG, from IHDR itself,
  5. the memory the decode will take (width × height × bytes per pixel, after JPEG's reduced-
     scale draft()) against a per-decode budget, and at most DECODE_SLOTS decodes at once per
     process, so a worker's peak memory is bounded whatever arrives in parallel,
  6. decoding, shrinking at once, then re-encoding the pixels alone into a fresh image, so EXIF
     (GPS included), ICC, comments and any payload are gone."""
from __future__ import annotations

import io
import logging
import re
import secrets
import struct
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, PngImagePlugin
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.errors import APIError, register_codes
from app.core.objectstore import ObjectMissing, ObjectStore, StorageUnavailable, StoredObject, current_store

log = logging.getLogger(__name__)

register_codes({
    "PHOTO_TOO_LARGE": (413, "照片过大，请压缩后重新上传"),
    "PHOTO_NOT_IMAGE": (415, "只能上传 JPEG 或 PNG 格式的照片"),
    "PHOTO_INVALID": (422, "照片已损坏或格式不正确，请重新拍摄后上传"),
    "PHOTO_TOO_MANY_PIXELS": (422, "照片分辨率过高，请压缩后重新上传"),
    "PHOTO_SUSPICIOUS": (422, "照片中含有多余的数据，请直接拍照后上传"),
    "PHOTO_BAD_SHAPE": (422, "照片尺寸或格式异常（过窄、过长或色深过高），请直接拍照后上传"),
    "PHOTO_BUSY": (503, "正在处理的照片较多，请稍后重新上传"),
    "PHOTO_NOT_FOUND": (404, "照片不存在"),
})

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 30_000_000  # a 6000×5000 phone photo; a bomb declares far more
MAX_INPUT_SIDE = 12_000  # either side of an upload
MIN_INPUT_SIDE = 16
MAX_ASPECT = 10  # long side / short side: panoramas and receipts pass, a 1-pixel strip does not
# Bytes the decoder may allocate for one image (after JPEG's reduced-scale draft): a 4096 × 4096
# RGBA PNG; a JPEG of any accepted size decodes well below it.
DECODE_BUDGET_BYTES = 64 * 1024 * 1024
DECODE_SLOTS = 2  # decodes at once per process; others wait up to DECODE_WAIT_SECONDS
DECODE_WAIT_SECONDS = 10
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4, "CMYK": 4}
_ALLOWED_MODES = {"JPEG": {"L", "RGB", "CMYK", "YCbCr"}, "PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}}
_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)
# PNG text chunks are decompressed by Pillow on open; keep their total small (defaults: 1 MB each,
# 64 MB in all).
PngImagePlugin.MAX_TEXT_CHUNK = 256 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 1024 * 1024
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


def _png_header_shape(data: bytes) -> tuple[int, int, int]:
    """(width, height, bit depth) from IHDR, which the PNG format puts first."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise refuse("PHOTO_INVALID")
    width, height, bit_depth = struct.unpack(">IIB", data[16:25])
    return width, height, bit_depth


def _check_shape(kind: str, width: int, height: int, mode: str, bit_depth: int = 8) -> None:
    if width * height > MAX_PIXELS:
        raise refuse("PHOTO_TOO_MANY_PIXELS", max_pixels=MAX_PIXELS)
    short, long = sorted((width, height))
    if short < MIN_INPUT_SIDE or long > MAX_INPUT_SIDE or long > short * MAX_ASPECT:
        raise refuse("PHOTO_BAD_SHAPE", min_side=MIN_INPUT_SIDE, max_side=MAX_INPUT_SIDE, max_aspect=MAX_ASPECT)
    if bit_depth > 8 or mode not in _ALLOWED_MODES[kind]:
        raise refuse("PHOTO_BAD_SHAPE", mode=mode, bit_depth=bit_depth)


def _open_header(data: bytes, kind: str) -> Image.Image:
    """Parse the header only and enforce the shape rules before anything is decoded."""
    if kind == "PNG":
        # Shape first, from the bytes themselves: Pillow is not asked to open a bomb at all
        # (the mode is checked below, once Pillow has read it).
        width, height, bit_depth = _png_header_shape(data)
        _check_shape(kind, width, height, "RGB", bit_depth)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse("PHOTO_TOO_MANY_PIXELS", max_pixels=MAX_PIXELS)
    except Exception:
        raise refuse("PHOTO_INVALID")
    try:
        _check_shape(kind, *image.size, image.mode)
    except APIError:
        image.close()
        raise
    return image


def _decode_cost(image: Image.Image) -> int:
    width, height = image.size
    return width * height * _BYTES_PER_PIXEL.get(image.mode, 4)


def _decode_small(image: Image.Image, kind: str) -> Image.Image:
    """Decode within the budget and shrink to the stored size straight away, so the full-size
    pixels are held once, briefly, and every later step works on the small image."""
    if kind == "JPEG":
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4, 1/8 scale when large
    if _decode_cost(image) > DECODE_BUDGET_BYTES:
        raise refuse("PHOTO_TOO_MANY_PIXELS", max_pixels=MAX_PIXELS)
    image.load()
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))  # exif survives in image.info for the transpose
    return image


def sanitize_image(data: bytes) -> Image.Image:
    """A clean RGB image (no metadata at all) from untrusted bytes, or a 4xx APIError."""
    kind = sniff(data)
    _check_envelope(data, kind)
    image = _open_header(data, kind)
    # Every pixel buffer of this image lives inside one of the process's decode slots.
    if not _decode_slots.acquire(timeout=DECODE_WAIT_SECONDS):
        image.close()
        raise refuse("PHOTO_BUSY")
    try:
        image = _decode_small(image, kind)
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
    finally:
        _decode_slots.release()


# Stored objects, relative to the store's root: the same names on local disk and in a bucket,
# so a backup of either restores into the other.
PHOTO_OBJECT = re.compile(r"^photos/[0-9a-f]{2}/[0-9a-f]{32}(\.t)?\.jpg$")


def photo_object_key(key: str, thumb: bool = False) -> str:
    if not _KEY.match(key or ""):
        raise refuse("PHOTO_NOT_FOUND")
    return f"photos/{key[:2]}/{key}{'.t' if thumb else ''}.jpg"


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def store_photo(data: bytes) -> str:
    """Sanitise and store; returns the random storage key (32 hex chars, 128 bits). The objects
    are written before the row that names them is committed, and belong to the current
    transaction: if it rolls back (the commit failing included), they are removed (no orphans).
    A store that is down is a 503 (StorageUnavailable), and the request rolls back."""
    image = sanitize_image(data)
    key = secrets.token_hex(16)
    thumb = image.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    # Encoded first, so the two writes follow each other with nothing in between.
    objects = ((photo_object_key(key), _jpeg(image, quality=85)),
               (photo_object_key(key, thumb=True), _jpeg(thumb, quality=75)))
    store = current_store()
    pending = _pending_objects()
    for name, body in objects:
        pending.append((store, name))  # before the write: if anything later fails, it is removed
        try:
            store.put(name, body, content_type="image/jpeg")
        except StorageUnavailable:
            # Not asked to delete again on rollback: the store just failed, a delete would most
            # likely wait out the same timeout, and an unreferenced object under a random key
            # (if the write landed after all) harms nobody. A photo written before it is.
            pending.pop()
            log.warning("photo object not stored (store unavailable); the request rolls back")
            raise
    return key


def _pending_objects() -> list:
    from app.extensions import db

    session = db.session()
    if not session.in_transaction():
        session.begin()  # so a commit or a rollback, and with it the listeners below, must follow
    return session.info.setdefault(_WRITTEN, [])


_WRITTEN = "written_objects"  # Session.info: [(store, object key)] written in this transaction


@event.listens_for(Session, "after_commit")
def _keep_committed_objects(session) -> None:
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_rollback")
def _remove_rolled_back_objects(session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the objects belong to the enclosing transaction, still alive
    left = 0
    for store, name in session.info.pop(_WRITTEN, ()):
        try:
            store.delete(name)
        except Exception:  # the store is down: the rollback itself must still succeed
            left += 1
    if left:
        log.warning("%d stored object(s) of a rolled-back transaction could not be removed "
                    "(store unavailable); they are unreferenced", left)


def read_photo(key: str, thumb: bool = False) -> StoredObject:
    """The stored photo (a file on local disk, bytes from an object store), or 404."""
    try:
        return current_store().get(photo_object_key(key, thumb))
    except ObjectMissing:
        raise refuse("PHOTO_NOT_FOUND")


@dataclass
class CopyResult:
    copied: int = 0
    skipped: int = 0  # already in the target with the same size
    vanished: int = 0  # listed, then gone before it was read


def photo_objects(store: ObjectStore) -> list[tuple[str, int]]:
    """Every stored photo and thumbnail of a store: (object key, size). Anything else under the
    root (temporary files, the doctor's probes) is not a photo."""
    return sorted((key, size) for key, size in store.list("photos/") if PHOTO_OBJECT.match(key))


def copy_photos(source: ObjectStore, target: ObjectStore, objects: list[tuple[str, int]],
                advance=lambda n=1: None) -> CopyResult:
    """Copy photo objects from one store to another (a backup: into a directory; a restore:
    back into the configured store). Idempotent: an object the target already holds with the
    same size is skipped (keys are random and photos never change, so the size suffices), and
    an interrupted run picks up where it stopped. StorageUnavailable ends the run."""
    present = dict(target.list("photos/"))
    result = CopyResult()
    for key, size in objects:
        if present.get(key) == size:
            result.skipped += 1
        else:
            try:
                data = source.get(key).read()
            except ObjectMissing:
                result.vanished += 1
            else:
                target.put(key, data, content_type="image/jpeg")
                result.copied += 1
        advance(1)
    return result
