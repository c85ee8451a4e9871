"""骑手随手拍: riders report problems they see on their rounds; markets and regulators handle them."""
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from app.core.idempotency import idempotent
from app.core.pagination import PageArgs, page_schema
from app.core.storage import MAX_PHOTO_BYTES, read_limited
from app.identity.auth import current_user, requires
from app.reports import queries, services
from app.reports.models import REPORT_STATUSES
from miniprogram_api.common import (REGION_CODE, BEARER, GCJ02, Blueprint, Bool, Int, LocalDateTime, PatchSchema, QueryBool, text)
from miniprogram_api.credentials import PhotoArgs, _send_photo
from miniprogram_api.labels import ENUM_LABELS

blp = Blueprint("reports", __name__, description="骑手随手拍")

# Chinese labels of this feature's option codes for the OpenAPI document (those not labelled yet).
for _code, _label in {**REPORT_STATUSES, "exact": "精确位置", "cell": "网格中心（已办结，精确位置已清除）"}.items():
    ENUM_LABELS.setdefault(_code, _label)

REGION = REGION_CODE
PHOTOS = ("现场照片 1–3 张（字段名均为 photos），JPEG 或 PNG，每张不超过 5 MB；服务器重新编码保存，"
          "去除 EXIF（含 GPS）。wx.uploadFile 一次只传一个文件：一张照片可直接用它提交，"
          "多张照片请用 wx.request 自行拼装 multipart 请求体")


class CategoryArgs(Schema):
    region = fields.String(load_default=None, validate=REGION,
                           metadata={"description": "行政区划代码：返回该地区适用的积分（地区设置优先，否则为全国默认）"})


class CategorySchema(Schema):
    code = fields.String(required=True, metadata={"description": "类别代码，提交举报时使用"})
    label = fields.String(required=True, metadata={"description": "类别名称，如 后厨卫生"})
    points = Int(required=True, metadata={"description": "经核实属实可得积分"})
    active = Bool(required=True)


class CategoryUpdatedSchema(CategorySchema):
    region = fields.String(allow_none=True, metadata={"description": "所设积分适用的地区；null 为全国默认"})


class CategoryUpdateSchema(PatchSchema):
    points = Int(validate=validate.Range(min=0, max=1000), metadata={"description": "经核实属实可得积分"})
    region = fields.String(validate=REGION, metadata={
        "description": "给出时只设置该地区的积分（该地区监管人员或管理员）；不给出时修改全国默认（仅管理员）"})
    label = text(32, required=False, metadata={"description": "类别名称（仅管理员，全国生效）"})
    active = Bool(metadata={"description": "false 停用该类别：不能再选，已有举报不受影响（仅管理员）"})


class ReportFormSchema(Schema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=32),
                             metadata={"description": "类别代码（GET /report-categories 的 code）"})
    description = text(500, metadata={"description": "看到的情况（经微信内容安全检测）"})
    lat = fields.Float(required=True, validate=validate.Range(-90, 90),
                       metadata={"description": f"现场纬度，{GCJ02}；须在中国境内（否则 REPORT_LOCATION_OUTSIDE_CHINA）"})
    lng = fields.Float(required=True, validate=validate.Range(-180, 180),
                       metadata={"description": f"现场经度，{GCJ02}；须在中国境内（否则 REPORT_LOCATION_OUTSIDE_CHINA）"})
    stall_token = fields.String(load_default=None, validate=validate.Length(max=64), metadata={
        "description": "扫描摊位二维码得到的摊位码；给出时由该市场管理方办理，忽略店铺名称和地址"})
    shop_name = text(100, required=False, load_default=None,
                     metadata={"description": "店铺名称（没有摊位二维码时必填），由骑手所在站点的区县监管部门办理"})
    shop_address = text(200, required=False, load_default=None, metadata={"description": "店铺地址"})
    photos = fields.List(Upload(), load_default=list, metadata={"description": PHOTOS})


class PlaceSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "stall 市场摊位 / shop 店铺"})
    market_name = fields.String(allow_none=True)
    stall_number = fields.String(allow_none=True)
    stall_token = fields.String(allow_none=True, metadata={"description": "摊位码（仅受理人可见）"})
    shop_name = fields.String(allow_none=True)
    shop_address = fields.String(allow_none=True)


class LocationSchema(Schema):
    lat = fields.Float(required=True, metadata={"description": f"纬度，{GCJ02}"})
    lng = fields.Float(required=True, metadata={"description": f"经度，{GCJ02}"})
    precision = fields.String(required=True, validate=validate.OneOf(["exact", "cell"]), metadata={
        "description": "exact 精确位置（办结前）；cell 所在 0.01° 网格的中心（办结后精确位置已清除）"})


class ReporterSchema(Schema):
    name = fields.String(required=True, metadata={"description": "脱敏姓名，如 王*军"})
    phone = fields.String(allow_none=True, metadata={"description": "脱敏手机号，如 138****8000"})


class HistorySchema(Schema):
    action = fields.String(required=True, metadata={
        "description": "submitted 提交 / accepted 受理 / upheld 属实 / unfounded 不属实 / rectified 整改 / transferred 转办"})
    at = LocalDateTime(required=True)
    region_code = fields.String(allow_none=True, metadata={"description": "转办到的地区"})


class ReportSchema(Schema):
    id = Int(required=True)
    category = fields.String(required=True)
    category_label = fields.String(allow_none=True)
    description = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(list(REPORT_STATUSES)),
                           metadata={"description": "open 待受理 / accepted 已受理 / upheld 属实 / unfounded 不属实 / "
                                                    "rectified 已整改"})
    status_label = fields.String(required=True)
    overdue = Bool(required=True, metadata={"description": "超期：1 个工作日内未受理，或 7 日内未办结"})
    place = fields.Nested(PlaceSchema, required=True)
    region_code = fields.String(required=True, metadata={"description": "办理地区（行政区划代码）"})
    photo_urls = fields.List(fields.String(), required=True)
    created_at = LocalDateTime(required=True)
    accept_due_at = LocalDateTime(required=True, metadata={"description": "受理时限（1 个工作日，周一至周五）"})
    close_due_at = LocalDateTime(required=True, metadata={"description": "办结时限（提交后 7 日）"})
    accepted_at = LocalDateTime(allow_none=True)
    decided_at = LocalDateTime(allow_none=True)
    decision_note = fields.String(allow_none=True, metadata={"description": "核实说明"})
    rectified_at = LocalDateTime(allow_none=True)
    rectification_note = fields.String(allow_none=True)
    rectification_photo_url = fields.String(allow_none=True)
    points_awarded = Int(allow_none=True, metadata={"description": "（举报人可见）经核实属实获得的积分；未核实为 null"})
    reporter = fields.Nested(ReporterSchema, metadata={"description": "（仅受理人可见）举报人脱敏姓名与手机号"})
    market_id = Int(allow_none=True, metadata={"description": "（仅受理人可见）办理市场；null 为监管部门直接办理"})
    location = fields.Nested(LocationSchema, metadata={"description": "（仅受理人可见）现场位置"})
    history = fields.List(fields.Nested(HistorySchema), metadata={"description": "办理经过（详情中提供）"})


class ReportListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(list(REPORT_STATUSES)), metadata={
        "description": "按状态筛选；受理人不填时为待办（待受理与已受理）"})
    mine = QueryBool(load_default=False, metadata={
        "description": "true：我提交的举报（最新在前）；false：受理人看辖区待办（最早提交的在前），骑手看自己的"})


class DecideSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["upheld", "unfounded"]),
                             metadata={"description": "upheld 属实 / unfounded 不属实"})
    note = fields.String(load_default=None, validate=validate.Length(max=500),
                         metadata={"description": "核实说明；不属实时必填（告知举报人）"})


class RectifiedFormSchema(Schema):
    note = text(500, required=False, load_default=None, metadata={"description": "整改情况"})
    photo = Upload(load_default=None, metadata={"description": "整改后照片（可选），JPEG 或 PNG，不超过 5 MB"})


class TransferSchema(Schema):
    region = fields.String(required=True, validate=REGION, metadata={"description": "转办到的地区（行政区划代码）"})
    note = fields.String(load_default=None, validate=validate.Length(max=500), metadata={"description": "转办说明"})


class FiguresArgs(Schema):
    region = fields.String(load_default=None, validate=REGION, metadata={
        "description": "行政区划代码（000000 为全国，仅管理员）；不填为本人管辖地区"})


class CountSchema(Schema):
    code = fields.String(required=True)
    label = fields.String()
    count = Int(required=True)


class MonthCountSchema(Schema):
    month = fields.String(required=True, metadata={"description": "北京时间月份，如 2026-03"})
    count = Int(required=True)


class FiguresSchema(Schema):
    region = fields.Dict(required=True, metadata={"description": "{code, name}"})
    total = Int(required=True)
    by_status = fields.Dict(keys=fields.String(), values=Int(), required=True,
                            metadata={"description": "open / accepted / upheld / unfounded / rectified 各状态件数"})
    by_category = fields.List(fields.Nested(CountSchema), required=True)
    by_region = fields.List(fields.Nested(CountSchema), required=True, metadata={"description": "按办理地区"})
    by_month = fields.List(fields.Nested(MonthCountSchema), required=True, metadata={"description": "按提交月份"})
    overdue = Int(required=True, metadata={"description": "当前超期未办结件数"})
    closed = Int(required=True, metadata={"description": "已办结（属实、不属实、已整改）"})
    upheld_rate = fields.Float(allow_none=True, metadata={"description": "属实率 = 属实（含已整改）/ 已办结"})
    close_hours_avg = fields.Float(allow_none=True, metadata={"description": "提交到作出核实结论的平均小时数"})
    close_hours_median = fields.Float(allow_none=True, metadata={"description": "提交到作出核实结论的小时数中位数"})


class CellSchema(Schema):
    lat = fields.Float(required=True, metadata={"description": f"网格中心纬度，{GCJ02}"})
    lng = fields.Float(required=True, metadata={"description": f"网格中心经度，{GCJ02}"})
    count = Int(required=True)


class HeatmapSchema(Schema):
    region = fields.Dict(required=True)
    cell_degrees = fields.Float(required=True, metadata={"description": "网格边长（度）"})
    min_count = Int(required=True, metadata={"description": "少于此数的网格不返回（保护举报人隐私）"})
    cells = fields.List(fields.Nested(CellSchema), required=True)
    suppressed = Int(required=True, metadata={"description": "因所在网格件数过少而未返回的举报数"})


@blp.route("/report-categories", methods=["GET"])
@blp.arguments(CategoryArgs, location="query")
@blp.response(200, CategorySchema(many=True))
def categories(args):
    """随手拍类别与积分（无需登录）"""
    return services.list_categories(args["region"])


@blp.route("/report-categories/<category_code>", methods=["PATCH"])
@blp.arguments(CategoryUpdateSchema)
@blp.response(200, CategoryUpdatedSchema)
@blp.doc(security=BEARER)
@requires("regulator", "admin")
def update_category(data, category_code):
    """设置类别积分：带 region 为该地区积分（辖区监管人员）；不带 region 修改全国默认、名称或停用（管理员）。记入审计日志"""
    return services.update_category(current_user(), category_code, data)


@blp.route("/reports", methods=["POST"])
@idempotent
@blp.arguments(ReportFormSchema, location="form_and_files")
@blp.response(201, ReportSchema)
@blp.doc(security=BEARER)
@requires("rider")
def file_report(data):
    """骑手随手拍（multipart）：类别、描述、1–3 张照片、现场位置（GCJ-02），以及摊位码或店铺名称地址；支持
    Idempotency-Key。有摊位码的交该市场管理方办理；否则交骑手所在站点（其次为所在党组织）所属区县的监管部门办理，
    不属该地的由监管部门转办"""
    photos = [read_limited(upload.stream, MAX_PHOTO_BYTES) for upload in data.pop("photos")[:services.MAX_PHOTOS + 1]]
    report = services.file_report(current_user(), data, photos)
    return queries.report_view(report, handler=False)


@blp.route("/reports", methods=["GET"])
@blp.arguments(ReportListArgs, location="query")
@blp.response(200, page_schema(ReportSchema))
@blp.doc(security=BEARER)
@requires("rider", "market_manager", "regulator")
def list_reports(args):
    """随手拍列表：骑手看自己提交的；市场管理方、监管人员看辖区待办（最早提交的在前，超期的 overdue 为 true）"""
    return queries.list_reports(current_user(), args["status"], args["mine"], args["page"], args["per_page"])


@blp.route("/reports/stats", methods=["GET"])
@blp.arguments(FiguresArgs, location="query")
@blp.response(200, FiguresSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def figures(args):
    """随手拍统计（监管人员）：按类别、地区、月份、状态的件数，超期件数，办结用时平均数与中位数"""
    region = queries.resolve_region(current_user(), args["region"])
    return {"region": region, **queries.report_figures(region["code"])}


@blp.route("/reports/heatmap", methods=["GET"])
@blp.arguments(FiguresArgs, location="query")
@blp.response(200, HeatmapSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def heatmap(args):
    """随手拍网格热力图（监管人员）：按 0.01° 网格汇总的件数，不含单个举报位置；少于 3 件的网格不返回"""
    region = queries.resolve_region(current_user(), args["region"])
    return {"region": region, **queries.heatmap(region["code"])}


@blp.route("/reports/<int:report_id>", methods=["GET"])
@blp.response(200, ReportSchema)
@blp.doc(security=BEARER)
@requires()
def get_report(report_id):
    """随手拍详情与办理经过：举报人看到办理进度；受理人另见举报人脱敏信息与现场位置"""
    return queries.view_report(current_user(), report_id)


@blp.route("/reports/<int:report_id>/photos/<photo_key>.jpg", methods=["GET"])
@blp.arguments(PhotoArgs, location="query")
@blp.doc(security=BEARER, responses={200: {"description": "JPEG", "content": {"image/jpeg": {}}}})
@requires()
def photo(args, report_id, photo_key):
    """随手拍照片或整改照片（举报人与受理人）"""
    response = _send_photo(services.photo_of(current_user(), report_id, photo_key, args["thumb"]), max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _handled(report) -> dict:
    return queries.report_view(report, handler=True)


@blp.route("/reports/<int:report_id>/accept", methods=["POST"])
@blp.response(200, ReportSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def accept(report_id):
    """受理（市场管理方或辖区监管人员）；举报人收到通知，记入审计日志"""
    return _handled(services.accept(current_user(), report_id))


@blp.route("/reports/<int:report_id>/decide", methods=["POST"])
@blp.arguments(DecideSchema)
@blp.response(200, ReportSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def decide(data, report_id):
    """核实结论：属实（upheld，举报人获得积分；摊位举报在整改前计入其公示页的经核实投诉）或不属实（unfounded，须填说明）；
    办结后精确位置只保留网格中心。整改照片在登记整改时上传"""
    return _handled(services.decide(current_user(), report_id, data["decision"], data["note"]))


@blp.route("/reports/<int:report_id>/rectified", methods=["POST"])
@idempotent
@blp.arguments(RectifiedFormSchema, location="form_and_files")
@blp.response(200, ReportSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def rectified(data, report_id):
    """登记整改（multipart，可附整改照片；支持 Idempotency-Key）：摊位公示页不再计入该举报"""
    upload = data.get("photo")
    photo = read_limited(upload.stream, MAX_PHOTO_BYTES) if upload else None
    return _handled(services.rectified(current_user(), report_id, data["note"], photo))


@blp.route("/reports/<int:report_id>/transfer", methods=["POST"])
@blp.arguments(TransferSchema)
@blp.response(200, ReportSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def transfer(data, report_id):
    """转办到其他地区（监管人员）：由该地区监管人员重新受理；举报人收到通知，记入审计日志"""
    return _handled(services.transfer(current_user(), report_id, data["region"], data["note"]))
