"""A job's input file (a bulk import's spreadsheet): read from the request within a size limit,
kept in the object store under jobs/uploads/ (any host's worker reads it, a retry reads it
again), deleted with the job's row when the sweep purges it (app/jobs/sweep.py)."""
from __future__ import annotations

from app.core.errors import APIError
from app.core.ids import base62_token

INPUT_PARAM = "input_key"  # the job parameter naming its input file; the purge deletes it


def read_upload(stream, limit: int) -> bytes:
    """At most `limit` bytes (never buffers more than limit + 1); 413 JOB_UPLOAD_TOO_LARGE beyond,
    422 JOB_UPLOAD_EMPTY for nothing at all."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise APIError(code="JOB_UPLOAD_TOO_LARGE", details={"max_bytes": limit})
    if not data.strip():
        raise APIError(code="JOB_UPLOAD_EMPTY")
    return data


def store_input(data: bytes, extension: str, content_type: str) -> str:
    """Keep the upload for the job; its key goes into the job's parameters as INPUT_PARAM."""
    from app.core.objectstore import current_store

    key = f"jobs/uploads/{base62_token(16)}.{extension}"
    current_store().put(key, data, content_type=content_type)
    return key


def read_input(key: str) -> bytes:
    """The job's input; gone (deleted by hand) fails the job with a reason the user can act on."""
    from app.core.objectstore import ObjectMissing, current_store

    try:
        return current_store().get(key).read()
    except ObjectMissing:
        raise APIError(code="JOB_INPUT_MISSING")
