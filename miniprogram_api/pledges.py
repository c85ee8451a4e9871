"""Integrity pledges (诚信经营承诺): templates, signing, review queue, review, revocation, export."""
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.core.idempotency import idempotent
from app.core.pagination import PageArgs, page_schema
from app.core.time import utcnow
from app.pledges import exports, jobs, services
from app.pledges.models import PLEDGE_STATUSES, STATUS_LABELS
from app.pledges.queries import last_local_day
from miniprogram_api.jobs import JobSchema, accepted
from miniprogram_api.common import (REGION_CODE, BEARER, Person, Blueprint, Bool, DecisionSchema, Int, LocalDateTime, ReasonSchema,
                                    text, xlsx_doc, xlsx_download)

blp = Blueprint("pledges", __name__, description="诚信经营承诺")


COMMITMENT_ITEMS = dict(validate=validate.Length(min=1, max=30),
                        metadata={"description": "承诺事项，按顺序排列（1–30 条）",
                                  "example": ["亮照亮证经营", "明码标价", "不售假冒伪劣商品"]})
TERM_MONTHS = dict(validate=validate.Range(min=1, max=60),
                   metadata={"description": "承诺期限（月），批准之日起算", "example": 12})


# -- templates ---------------------------------------------------------------------------------

class TemplateQuerySchema(PageArgs):
    region = fields.String(load_default=None, validate=REGION_CODE,
                           metadata={"description": "行政区划代码：只列出适用于该地区的模板，"
                                                    "就近优先（区县、地市、省、全国）", "example": "450403"})
    market_id = Int(load_default=None, validate=validate.Range(min=1),
                               metadata={"description": "按市场所在地区筛选（代替 region）"})


class TemplateCreateSchema(Schema):
    title = text(100, metadata={"example": "诚信经营承诺书"})
    items = fields.List(text(200), required=True, **COMMITMENT_ITEMS)
    term_months = Int(load_default=12, **TERM_MONTHS)
    region_code = fields.String(required=True, validate=REGION_CODE,
                                metadata={"description": "适用地区的行政区划代码；000000 表示全国（仅系统管理员）",
                                          "example": "450000"})


class TemplateUpdateSchema(Schema):
    title = text(100, required=False, blank=False)
    items = fields.List(text(200), **COMMITMENT_ITEMS)
    term_months = Int(**TERM_MONTHS)
    active = Bool(metadata={"description": "false 停用；已被签署过的模板修改文字会生成新版本"})


class TemplateSchema(Schema):
    id = Int(required=True)
    family_id = fields.String(required=True, metadata={"description": "同一模板各版本共享"})
    version = Int(required=True)
    title = fields.String(required=True)
    items = fields.List(fields.String(), required=True)
    term_months = Int(required=True)
    region_code = fields.String(allow_none=True, metadata={"description": "null 表示全国"})
    active = Bool(required=True)
    created_at = LocalDateTime()
    updated_at = LocalDateTime()


@blp.route("/pledge-templates", methods=["GET"])
@blp.arguments(TemplateQuerySchema, location="query")
@blp.response(200, page_schema(TemplateSchema))
def list_templates(args):
    """可签署的承诺书模板（启用中）；按地区筛选时最近一级地区的模板排在最前"""
    return services.list_templates(args["region"], args["market_id"], args["page"], args["per_page"])


@blp.route("/pledge-templates/<int:template_id>", methods=["GET"])
@blp.response(200, TemplateSchema)
def get_template(template_id):
    """查看承诺书模板的某个版本"""
    return services.get_template(template_id)


@blp.route("/pledge-templates", methods=["POST"])
@blp.arguments(TemplateCreateSchema)
@blp.response(201, TemplateSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def create_template(data):
    """市场监管人员为辖区新建承诺书模板"""
    return services.create_template(current_user(), data)


@blp.route("/pledge-templates/<int:template_id>", methods=["PUT"])
@blp.arguments(TemplateUpdateSchema)
@blp.response(200, TemplateSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def update_template(data, template_id):
    """修改模板；已有承诺签署过的模板会生成新版本（旧版本停用），返回修改后的版本"""
    return services.update_template(current_user(), template_id, data)


# -- pledges -----------------------------------------------------------------------------------

class SignSchema(Schema):
    template_id = Int(required=True, validate=validate.Range(min=1))
    signer_name = text(64, metadata={"description": "签署人姓名（手写输入）", "example": "李小兰"})
    extra_commitments = text(1000, required=False, load_default=None, allow_none=True,
                                metadata={"description": "补充承诺（可选，经微信内容安全检测）"})
    market_id = Int(load_default=None, validate=validate.Range(min=1),
                               metadata={"description": "审核市场：在多个市场有摊位时必填"})


class PledgeSchema(Schema):
    id = Int(required=True)
    merchant_id = Int(required=True)
    merchant_name = fields.Function(lambda p: p.merchant.name)
    market_id = Int(required=True)
    market_name = fields.Function(lambda p: p.market.name)
    template_id = Int(required=True)
    template_version = Int(required=True)
    title = fields.String(required=True)
    items = fields.List(fields.String(), required=True)
    extra_commitments = fields.String(allow_none=True)
    signer_name = fields.String(required=True)
    signed_by = Person("signed_by_id", metadata={"description": "签署的账号：姓名与脱敏手机号"})
    term_months = Int(required=True)
    status = fields.Function(lambda p: p.status_at(utcnow()),
                             metadata={"enum": list(PLEDGE_STATUSES),
                                       "description": "approved 即生效中；过了有效期的显示 expired"})
    status_label = fields.Function(lambda p: STATUS_LABELS[p.status_at(utcnow())])
    submitted_at = LocalDateTime(attribute="created_at")
    reviewed_at = LocalDateTime(allow_none=True)
    review_reason = fields.String(allow_none=True)
    valid_from = LocalDateTime(allow_none=True)
    valid_until = LocalDateTime(allow_none=True, metadata={"description": "失效时刻（不含）"})
    valid_through = fields.Function(lambda p: last_local_day(p.valid_until), allow_none=True,
                                    metadata={"description": "有效期最后一天（本地日期）"})
    revoked_at = LocalDateTime(allow_none=True)
    revoke_reason = fields.String(allow_none=True)


PledgePageSchema = page_schema(PledgeSchema)


class MarketPledgeQuerySchema(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(PLEDGE_STATUSES),
                           metadata={"description": "pending 待审核 / approved 生效中 / rejected / revoked / expired"})


class ExportQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(PLEDGE_STATUSES))


@blp.route("/merchants/<int:merchant_id>/pledges", methods=["POST"])
@idempotent
@blp.arguments(SignSchema)
@blp.response(201, PledgeSchema)
@blp.doc(security=BEARER, parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                                       "schema": {"type": "string", "maxLength": 128}}])
@requires()
def sign_pledge(data, merchant_id):
    """经营主体所有者签署诚信经营承诺，提交所在市场审核（支持 Idempotency-Key）"""
    return services.sign_pledge(current_user(), merchant_id, data)


@blp.route("/merchants/<int:merchant_id>/pledges", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, PledgePageSchema)
@blp.doc(security=BEARER)
@requires()
def merchant_pledges(args, merchant_id):
    """本人经营主体的承诺记录（最新在前）"""
    return services.list_merchant_pledges(current_user(), merchant_id, args["page"], args["per_page"])


@blp.route("/pledges/<int:pledge_id>", methods=["GET"])
@blp.response(200, PledgeSchema)
@blp.doc(security=BEARER)
@requires()
def get_pledge(pledge_id):
    """查看承诺（签署方或审核方）"""
    return services.view_pledge(current_user(), pledge_id)


@blp.route("/pledges/<int:pledge_id>/review", methods=["POST"])
@blp.arguments(DecisionSchema)
@blp.response(200, PledgeSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def review_pledge(data, pledge_id):
    """本市场管理方或辖区监管人员批准（按模板期限生效）或驳回（须填写原因）；记入审计日志"""
    return services.review_pledge(current_user(), pledge_id, data["decision"], data.get("reason"))


@blp.route("/pledges/<int:pledge_id>/revoke", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, PledgeSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def revoke_pledge(data, pledge_id):
    """撤销生效中的承诺（须填写原因）；公示牌上的诚信承诺立即撤下"""
    return services.revoke_pledge(current_user(), pledge_id, data["reason"])


@blp.route("/markets/<int:market_id>/pledges", methods=["GET"])
@blp.arguments(MarketPledgeQuerySchema, location="query")
@blp.response(200, PledgePageSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def market_pledges(args, market_id):
    """市场的承诺审核队列（最早提交的在前）"""
    return services.list_market_pledges(current_user(), market_id, args["status"], args["page"],
                                        args["per_page"])


@blp.route("/markets/<int:market_id>/pledges.xlsx", methods=["GET"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(security=BEARER, responses={"200": xlsx_doc("Excel 表格（签署人全名；不含手机号）")})
@requires("market_manager", "regulator")
def export_market_pledges(args, market_id):
    """导出市场的承诺台账（xlsx）；承诺超过 2000 份的市场返回 409 PLEDGE_LEDGER_USE_JOB，请改用后台生成"""
    actor = current_user()
    # Access first (the export checks it again): an outsider learns nothing of the market's size.
    jobs.ledger_market(actor, market_id)
    jobs.refuse_direct_ledger_if_large(market_id, args["status"])
    now = utcnow()
    market, data = exports.market_pledges_xlsx(actor, market_id, args["status"], now=now)
    return xlsx_download(data, jobs.ledger_filename(market, now))


@blp.route("/markets/<int:market_id>/pledge-ledger-jobs", methods=["POST"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.response(202, JobSchema, description="已排队；按 Location（GET /api/v1/jobs/{id}）轮询进度，完成后下载 xlsx")
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def pledge_ledger_job(args, market_id):
    """后台生成市场的承诺台账（xlsx，与直接导出的内容相同；承诺多的市场用这个）"""
    return accepted(jobs.submit_pledge_ledger(current_user(), market_id, args["status"]))
