from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.identity.services import appoint_market_manager
from app.markets import services
from app.markets.imports import submit_stall_import
from app.markets.jobs import refuse_direct_sheet_if_large, submit_sticker_sheet
from app.worklists import markets as worklists
from app.worklists.markets import CLAIM_STATUSES
from app.core.pagination import PageArgs, page_schema
from app.markets.models import FEEDBACK_STATUSES, MARKET_KINDS
from miniprogram_api.jobs import JobSchema, accepted
from miniprogram_api.common import REGION_CODE, latitude, longitude, BEARER, Bool, ErrorSchema, PatchSchema, Person, Blueprint, Int, LocalDateTime, QueryBool, text

blp = Blueprint("markets", __name__, description="市场")


class MarketCreateSchema(Schema):
    name = text(100)
    region_code = fields.String(required=True, validate=REGION_CODE,
                                metadata={"description": "行政区划代码（6 位）", "example": "450403"})
    address = text(200, required=False, load_default=None)
    kind = fields.String(load_default="综合市场", validate=validate.OneOf(MARKET_KINDS))
    lat = latitude(load_default=None)
    lng = longitude(load_default=None)


class MarketSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    region_code = fields.String(required=True)
    address = fields.String(allow_none=True)
    kind = fields.String(required=True)
    lat = latitude(allow_none=True)
    lng = longitude(allow_none=True)
    closed = fields.Function(lambda m: m.closed_at is not None, metadata={"description": "是否已关闭"})
    closed_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class MarketUpdateSchema(PatchSchema):
    name = text(100, required=False)
    address = text(200, required=False, allow_none=True)
    closed = Bool(metadata={"description": "true 关闭市场（停业、搬迁），false 重新开放"})


class MarketListArgs(PageArgs):
    region = fields.String(load_default=None, validate=REGION_CODE,
                           metadata={"description": "只看该行政区划（含下级）", "example": "450403"})
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=50),
                      metadata={"description": "按市场名称搜索"})


class MarketCountsSchema(Schema):
    stalls = Int(required=True, metadata={"description": "摊位数"})
    claimed = Int(required=True, metadata={"description": "已认领（有经营主体）的摊位数"})
    pending_claims = Int(required=True, metadata={"description": "待确认的认领"})
    pending_credentials = Int(required=True, metadata={"description": "待审核的证照"})
    pending_pledges = Int(required=True, metadata={"description": "待审核的诚信承诺"})


class MarketListItemSchema(MarketSchema):
    counts = fields.Nested(MarketCountsSchema, required=True)


class ClaimQueueArgs(PageArgs):
    status = fields.String(load_default="pending", validate=validate.OneOf(CLAIM_STATUSES),
                           metadata={"description": "pending 待确认（默认，最早提交的在前）/ confirmed / rejected / released"})


class ClaimStallSchema(Schema):
    id = Int(required=True)
    number = fields.String(required=True)
    token = fields.String(required=True)


class ClaimMerchantSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    uscc = fields.String(required=True, metadata={"description": "统一社会信用代码"})
    operator_name = fields.String(required=True, metadata={"description": "经营者姓名"})


class ClaimQueueItemSchema(Schema):
    id = Int(required=True)
    status = fields.String(required=True)
    stall = fields.Nested(ClaimStallSchema, required=True)
    merchant = fields.Nested(ClaimMerchantSchema, required=True)
    requested_by = Person("requested_by_id", metadata={"description": "认领人：姓名与脱敏手机号"})
    created_at = LocalDateTime(required=True)
    reviewed_at = LocalDateTime(allow_none=True)
    review_reason = fields.String(allow_none=True)


class AppointManagerSchema(Schema):
    openid = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "被任命人的 openid（未登录过也可先任命）"})
    reason = text(500, required=False, load_default=None)


class GrantSchema(Schema):
    user_id = Int(required=True)
    role = fields.String(required=True)
    scope = fields.String(required=True)


@blp.route("/markets", methods=["POST"])
@blp.arguments(MarketCreateSchema)
@blp.response(201, MarketSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def create_market(data):
    """市场监管人员在辖区内创建市场"""
    return services.create_market(current_user(), data)


@blp.route("/markets", methods=["GET"])
@blp.arguments(MarketListArgs, location="query")
@blp.response(200, page_schema(MarketListItemSchema))
@blp.doc(security=BEARER)
@requires("regulator", "market_manager")
def list_markets(args):
    """我管辖的市场（监管人员：辖区内；市场管理方：本市场），含摊位、认领与待审核数"""
    return worklists.list_markets(current_user(), args["region"], args["q"], args["page"], args["per_page"])


@blp.route("/markets/<int:market_id>/claims", methods=["GET"])
@blp.arguments(ClaimQueueArgs, location="query")
@blp.response(200, page_schema(ClaimQueueItemSchema))
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def claim_queue(args, market_id):
    """摊位认领待办：待确认的按提交先后排列（最早的在前），含经营主体与认领人"""
    return worklists.claim_queue(current_user(), market_id, args["status"], args["page"], args["per_page"])


@blp.route("/markets/<int:market_id>", methods=["GET"])
@blp.response(200, MarketSchema)
@blp.doc(security=BEARER)
@requires("regulator", "market_manager")
def get_market(market_id):
    """查看市场（辖区内的监管人员或本市场管理方）"""
    return services.view_market(current_user(), market_id)


@blp.route("/markets/<int:market_id>", methods=["PATCH"])
@blp.arguments(MarketUpdateSchema)
@blp.response(200, MarketSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def update_market(data, market_id):
    """修改市场名称、地址，关闭或重新开放市场（辖区监管人员；记入审计日志）"""
    return services.update_market(current_user(), market_id, data)


@blp.route("/markets/<int:market_id>/managers", methods=["POST"])
@blp.arguments(AppointManagerSchema)
@blp.response(201, GrantSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def appoint_manager(data, market_id):
    """任命市场管理方（记入审计日志）"""
    grant = appoint_market_manager(current_user(), services.get_market(market_id), data["openid"],
                                   data["reason"])
    return {"user_id": grant.user_id, "role": grant.role, "scope": grant.scope}


# -- stalls of a market ----------------------------------------------------------------------------
def stall_number_rule() -> list:
    """The stall-number rule of app.markets.services as schema validators (the bulk import
    applies the same rule row by row: services.stall_number_problem)."""
    return [validate.Length(min=1, max=services.STALL_NUMBER_MAX),
            validate.Regexp(services.STALL_NUMBER_PATTERN, error=services.STALL_NUMBER_PATTERN_ERROR)]


class StallsCreateSchema(Schema):
    numbers = fields.List(
        fields.String(validate=stall_number_rule()),
        required=True, validate=validate.Length(min=1, max=500),
        metadata={"description": "摊位号列表，一次最多 500 个", "example": ["A-01", "A-02"]})


class BadgeStatusSchema(Schema):
    verdict = fields.String(required=True, metadata={"example": "放心摊位"})
    version = Int(required=True)
    reasons = fields.List(fields.String(), required=True)


class MerchantRefSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)


class PendingClaimSchema(Schema):
    id = Int(required=True)
    merchant_id = Int(required=True)
    requested_by = Person("requested_by_id", metadata={"description": "认领人：姓名与脱敏手机号"})
    created_at = LocalDateTime()


class StallListItemSchema(Schema):
    id = Int(required=True)
    number = fields.String(required=True)
    token = fields.String(required=True, metadata={"description": "摊位公开码（二维码中的随机串）"})
    market_id = Int(required=True)
    claim_status = fields.String(required=True, metadata={"description": "unclaimed | pending | confirmed"})
    merchant = fields.Nested(MerchantRefSchema, allow_none=True)
    pending_claim = fields.Nested(PendingClaimSchema, allow_none=True)
    badge = fields.Nested(BadgeStatusSchema, required=True)


class StallCreatedSchema(Schema):
    created = Int(required=True)
    items = fields.List(fields.Nested(lambda: StallBriefSchema()), required=True)


class StallBriefSchema(Schema):
    id = Int(required=True)
    number = fields.String(required=True)
    token = fields.String(required=True)
    market_id = Int(required=True)


class FeedbackArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(FEEDBACK_STATUSES))


class FeedbackItemSchema(Schema):
    id = Int(required=True)
    stall_number = fields.String(required=True)
    category = fields.String(required=True)
    text = fields.String(required=True)
    status = fields.String(required=True)
    created_at = LocalDateTime()
    reviewed_at = LocalDateTime(allow_none=True)
    review_reason = fields.String(allow_none=True)


@blp.route("/markets/<int:market_id>/stalls", methods=["POST"])
@blp.arguments(StallsCreateSchema)
@blp.response(201, StallCreatedSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def create_stalls(data, market_id):
    """批量创建摊位（本市场管理方或辖区监管人员）；摊位号重复时全部不创建并列出重复项"""
    stalls = services.create_stalls(current_user(), market_id, data["numbers"])
    return {"created": len(stalls), "items": stalls}


class StallListArgs(PageArgs):
    claimed = QueryBool(load_default=None, metadata={"description": "true 只看已认领，false 只看未认领"})
    verdict = fields.String(load_default=None, validate=validate.OneOf(["good", "partial", "none", "warning"]),
                            metadata={"description": "公示结论：good 放心摊位 / partial 部分公示 / none 未公示 / warning 近期有经核实的投诉"})
    expiring_within = Int(load_default=None, validate=validate.Range(min=0, max=366),
                          metadata={"description": "N 天内有证照或诚信承诺到期的摊位", "example": 30})


@blp.route("/markets/<int:market_id>/stalls", methods=["GET"])
@blp.arguments(StallListArgs, location="query")
@blp.response(200, page_schema(StallListItemSchema))
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def list_stalls(args, market_id):
    """市场的摊位列表，含认领状态与公示结论；可按是否认领、公示结论、N 天内到期筛选"""
    page, per_page = args.pop("page"), args.pop("per_page")
    return worklists.stall_list(current_user(), market_id, args, page, per_page)


@blp.route("/markets/<int:market_id>/qr-sheet.pdf", methods=["GET"])
@blp.doc(security=BEARER, responses={200: {"description": "A4 不干胶二维码 PDF（每页 24 个）",
                                           "content": {"application/pdf": {}}}})
@requires("market_manager", "regulator")
def qr_sheet(market_id):
    """打印本市场全部摊位的二维码贴纸（A4 PDF）"""
    import tempfile

    from flask import send_file

    from app.markets.qr import market_stall_rows, write_sticker_sheet

    market, _ = services.manage_market(current_user(), market_id)
    refuse_direct_sheet_if_large(market)  # a big market's sheet outlasts any request: the job
    # Spooled: in memory up to 4 MB, a temporary file beyond.
    out = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    write_sticker_sheet(out, market.name, market_stall_rows(market.id))
    out.seek(0)
    response = send_file(out, mimetype="application/pdf", as_attachment=True,
                         download_name=f"market-{market.id}-stickers.pdf")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/markets/<int:market_id>/qr-sheet-jobs", methods=["POST"])
@blp.response(202, JobSchema, description="已排队；按 Location（GET /api/v1/jobs/{id}）轮询进度，完成后下载")
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def qr_sheet_job(market_id):
    """后台生成本市场全部摊位的二维码贴纸 PDF（摊位多的市场用这个；同一市场正在生成时返回同一个任务）"""
    return accepted(submit_sticker_sheet(current_user(), market_id))


@blp.route("/markets/<int:market_id>/board-qrcode.png", methods=["GET"])
@blp.doc(security=BEARER, responses={200: {"description": "PNG 图片：市场公示页 /m/{市场码} 的二维码",
                                           "content": {"image/png": {}}}})
@requires("market_manager", "regulator")
def board_qrcode(market_id):
    """市场入口公示牌的二维码（扫码打开本市场摊位公示页，无需登录）"""
    from flask import Response

    from app.markets.board import board_qr_png

    market, _ = services.manage_market(current_user(), market_id)
    response = Response(board_qr_png(market), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blp.route("/markets/<int:market_id>/board-poster.pdf", methods=["GET"])
@blp.doc(security=BEARER, responses={200: {"description": "A4 公示牌 PDF（市场名称、大号二维码、说明）",
                                           "content": {"application/pdf": {}}}})
@requires("market_manager", "regulator")
def board_poster(market_id):
    """打印市场入口公示牌（A4 PDF）：扫码查看本市场摊位亮照亮证、诚信承诺与示范摊位"""
    import io

    from flask import send_file

    from app.markets.board import write_board_poster

    market, _ = services.manage_market(current_user(), market_id)
    out = io.BytesIO()
    write_board_poster(out, market)
    out.seek(0)
    response = send_file(out, mimetype="application/pdf", as_attachment=True,
                         download_name=f"market-{market.id}-board.pdf")
    response.headers["Cache-Control"] = "private, no-store"
    return response


class StallImportSchema(Schema):
    file = Upload(required=True, metadata={"description": (
        "CSV（UTF-8 或 GBK 编码）或 Excel .xlsx，不超过 2 MB、20000 行；第一行为表头，须有“摊位号”列，"
        "可另有“备注”列（管理方备注，不公开）")})


@blp.route("/markets/<int:market_id>/stall-imports", methods=["POST"])
@blp.arguments(StallImportSchema, location="form_and_files")
@blp.response(202, JobSchema, description="已排队；按 Location（GET /api/v1/jobs/{id}）轮询进度，完成后下载导入结果（JSON）")
@blp.alt_response(413, schema=ErrorSchema, description="文件过大：JOB_UPLOAD_TOO_LARGE")
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def stall_import_job(data, market_id):
    """从 CSV / Excel 批量导入摊位（后台执行）：本市场已有的摊位号跳过，不合规的行列出行号与原因；可重试，不会重复创建"""
    return accepted(submit_stall_import(current_user(), market_id, data["file"].stream))


@blp.route("/markets/<int:market_id>/feedback", methods=["GET"])
@blp.arguments(FeedbackArgs, location="query")
@blp.response(200, page_schema(FeedbackItemSchema))
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def list_feedback(args, market_id):
    """消费者反映的问题（本市场管理方或辖区监管人员）"""
    return services.list_feedback(current_user(), market_id, args["status"], args["page"], args["per_page"])
