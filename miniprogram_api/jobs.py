"""Background jobs: poll a job, download its result, retry a failed one (the owner only)."""
from __future__ import annotations

import io

from flask import send_file
from marshmallow import Schema, fields

from app.identity.auth import current_user, requires
from app.jobs import services
from app.jobs.dispatch import start_if_embedded
from app.jobs.models import STATUS_LABELS, STATUSES
from miniprogram_api.common import BEARER, Blueprint, ErrorSchema, Int, LocalDateTime

blp = Blueprint("jobs", __name__, description="后台任务（贴纸 PDF 等耗时的生成：提交后轮询进度，完成后下载）")


class JobProgressSchema(Schema):
    done = Int(required=True, metadata={"description": "已完成的数量（如已生成的页数）"})
    total = Int(allow_none=True, metadata={"description": "总数；未知时为 null"})
    percent = Int(required=True, metadata={"description": "完成百分比 0–100"})


class JobErrorSchema(Schema):
    code = fields.String(required=True, metadata={"example": "JOB_FAILED"})
    message = fields.String(required=True, metadata={"example": "任务失败，请重试"})


class JobResultSchema(Schema):
    url = fields.String(required=True, metadata={"description": "下载地址（带登录凭证请求）",
                                                 "example": "/api/v1/jobs/Ab3dEf6hIj9kLm2n/result"})
    filename = fields.String(required=True, metadata={"example": "梧州市万秀区综合市场-摊位二维码贴纸.pdf"})
    content_type = fields.String(required=True, metadata={"example": "application/pdf"})
    size = Int(allow_none=True, metadata={"description": "字节数"})
    expires_at = LocalDateTime(required=True, metadata={"description": "结果文件保存到此时刻，之后删除"})


class JobSchema(Schema):
    id = fields.String(required=True, metadata={"example": "Ab3dEf6hIj9kLm2n"})
    kind = fields.String(required=True, metadata={"example": "sticker_sheet"})
    title = fields.String(required=True, metadata={"example": "摊位二维码贴纸 PDF"})
    status = fields.String(required=True, metadata={
        "enum": list(STATUSES), "x-enum-labels": STATUS_LABELS,
        "description": "queued 排队中 / running 执行中 / succeeded 已完成 / failed 失败（可重试）/ expired 结果已过期删除"})
    status_label = fields.String(required=True, metadata={"description": "状态的中文名称", "example": "执行中"})
    progress = fields.Nested(JobProgressSchema, required=True)
    message = fields.String(allow_none=True, metadata={"description": "当前进展的说明"})
    attempts = Int(required=True, metadata={"description": "第几次执行（重试后加 1）"})
    error = fields.Nested(JobErrorSchema, allow_none=True, metadata={"description": "失败时的原因"})
    result = fields.Nested(JobResultSchema, allow_none=True, metadata={"description": "完成后可下载的文件"})
    created_at = LocalDateTime(required=True)
    started_at = LocalDateTime(allow_none=True)
    finished_at = LocalDateTime(allow_none=True)


def accepted(job):
    """202 with the job and where to poll it (for the features' submit endpoints)."""
    return services.describe(job), 202, {"Location": f"/api/v1/jobs/{job.public_id}"}


@blp.before_app_request
def _embedded_pool():
    """Without Redis the jobs run in this process's threads. Under gunicorn they start with each
    worker (deploy/gunicorn.conf.py); this cheap check (a dict lookup once running) starts them
    at the first request under any other server."""
    from flask import current_app

    if not current_app.testing:
        start_if_embedded(current_app._get_current_object())


@blp.route("/jobs/<job_id>", methods=["GET"])
@blp.response(200, JobSchema)
@blp.doc(security=BEARER)
@requires()
def get_job(job_id):
    """任务的状态与进度；完成后含下载地址（只有提交者本人可以查看）"""
    return services.describe(services.owned_job(current_user(), job_id))


@blp.route("/jobs/<job_id>/result", methods=["GET"])
@blp.doc(security=BEARER, responses={200: {"description": "生成的文件（如 PDF）",
                                           "content": {"application/octet-stream": {
                                               "schema": {"type": "string", "format": "binary"}}}}})
@blp.alt_response(409, schema=ErrorSchema, description="任务尚未完成：JOB_NOT_FINISHED")
@blp.alt_response(410, schema=ErrorSchema, description="结果已过期删除：JOB_RESULT_EXPIRED")
@requires()
def job_result(job_id):
    """下载任务生成的文件（文件名为中文，保存期限见 result.expires_at）"""
    stored, filename, content_type = services.result_of(services.owned_job(current_user(), job_id))
    body = stored.path if stored.path is not None else io.BytesIO(stored.data)
    response = send_file(body, mimetype=content_type, as_attachment=True, download_name=filename, etag=False,
                         conditional=False)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/jobs/<job_id>/retry", methods=["POST"])
@blp.response(202, JobSchema)
@blp.doc(security=BEARER)
@requires()
def retry_job(job_id):
    """重新执行失败的任务（参数不变，attempts 加 1）"""
    return accepted(services.retry(current_user(), job_id))
