"""The `jobs` table: what was asked, by whom, and where it stands. RQ (or the embedded pool)
only carries the public id; everything a client sees is read from here, on any host."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.extensions import db

STATUSES = ("queued", "running", "succeeded", "failed", "expired")
# A job's own words for its statuses (a notification's "failed" is 发送失败; a job's is not).
STATUS_LABELS = {"queued": "排队中", "running": "执行中", "succeeded": "已完成", "failed": "失败（可重试）",
                 "expired": "结果已过期"}


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        # The sweeps: running jobs by heartbeat (lost workers), succeeded ones by expiry, the
        # embedded pool's oldest queued job.
        Index("ix_jobs_status_heartbeat_at", "status", "heartbeat_at"),
        Index("ix_jobs_status_expires_at", "status", "expires_at"),
        Index("ix_jobs_owner_id", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), nullable=False, unique=True)  # in URLs; random
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # What the job is about ("market", "42"): the kind re-checks the owner's access to it on
    # every read, so a revoked manager no longer downloads the market's sheet.
    scope_type: Mapped[str | None] = mapped_column(String(16))
    scope_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Times the worker running it was lost (killed, host down); the first loss re-queues it once.
    interruptions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Written by the runner every few seconds while running; at queueing time otherwise.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    worker: Mapped[str | None] = mapped_column(String(160))  # host:pid:run of the current run
    result_key: Mapped[str | None] = mapped_column(String(200))  # object-store key, "jobs/…"
    result_filename: Mapped[str | None] = mapped_column(String(200))
    result_content_type: Mapped[str | None] = mapped_column(String(100))
    result_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = ["Job", "STATUSES", "STATUS_LABELS"]
