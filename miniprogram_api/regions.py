"""Regions (行政区划): administrators import a GB/T 2260 table as a background job."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema

from app.identity.auth import current_user, requires
from app.jobs.region_import import submit_region_import
from miniprogram_api.common import BEARER, Blueprint, ErrorSchema
from miniprogram_api.jobs import JobSchema, accepted

blp = Blueprint("regions", __name__, description="行政区划（系统管理员导入）")


class RegionImportSchema(Schema):
    file = Upload(required=True, metadata={"description": (
        "GB/T 2260 行政区划 CSV：每行“6 位代码,名称”，可有表头与 # 注释行，UTF-8 或 GBK 编码，不超过 2 MB")})


@blp.route("/regions/imports", methods=["POST"])
@blp.arguments(RegionImportSchema, location="form_and_files")
@blp.response(202, JobSchema, description="已排队；按 Location（GET /api/v1/jobs/{id}）轮询，完成后的 message 与结果文件给出新增条数")
@blp.alt_response(413, schema=ErrorSchema, description="文件过大：JOB_UPLOAD_TOO_LARGE")
@blp.doc(security=BEARER)
@requires("admin")
def import_regions(data):
    """导入行政区划（后台执行，仅系统管理员）：已有的代码不变，只新增缺少的"""
    return accepted(submit_region_import(current_user(), data["file"].stream))
