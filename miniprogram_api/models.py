"""典型选树（示范）: a region's criteria, the candidates computed from the records, conferring and
withdrawing 示范摊位 / 党员示范户 / 示范市场 (regulators). The market's public page is /m/<token>
(app/exemplars/market_page.py), outside /api/v1."""
from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs, page_schema
from app.core.time import utcnow
from app.exemplars import services
from app.exemplars.models import KINDS, MARKET_TITLE, STALL_TITLES, TITLE_STATUSES
from app.exemplars.queries import last_local_day
from app.identity.auth import current_user, requires
from miniprogram_api.common import (REGION_CODE, BEARER, Blueprint, Bool, Int, LocalDateTime, Person, QueryBool, ReasonSchema,
                                    text)

blp = Blueprint("models", __name__, description="典型选树（示范摊位、党员示范户、示范市场）")

KIND_LABELS = {"x-enum-labels": {"stall": "摊位", "market": "市场"}}
STATUS_LABELS = {"x-enum-labels": {"active": "有效", "withdrawn": "已撤销", "ended": "已到期"}}
REGION = dict(validate=REGION_CODE,
              metadata={"description": "行政区划代码（6 位）", "example": "450403"})


class StallCriteriaSchema(Schema):
    require_credentials = Bool(metadata={"description": "营业执照和各项许可证均已公示且在有效期内（默认 true）"})
    pledge_days = Int(validate=validate.Range(min=0, max=1095),
                      metadata={"description": "诚信经营承诺连续生效的最少天数（默认 180）"})
    no_upheld = Bool(metadata={"description": "近 90 天无经核实的投诉或骑手举报（默认 true）"})
    require_party_member = Bool(metadata={"description": "经营者须为经核实的党员（默认 false；“党员示范户”总是要求）"})


class MarketCriteriaSchema(Schema):
    full_badge_pct = Int(validate=validate.Range(min=0, max=100),
                         metadata={"description": "放心摊位（亮照亮证、承诺齐全）占在营摊位的最低百分比（默认 80）"})
    pledge_pct = Int(validate=validate.Range(min=0, max=100),
                     metadata={"description": "诚信承诺生效的摊位占在营摊位的最低百分比（默认 80）"})
    require_party_org = Bool(metadata={"description": "市场须已建立党组织（默认 true）"})
    min_stalls = Int(validate=validate.Range(min=1, max=100000), metadata={"description": "在营摊位最少数量（默认 5）"})


class CriteriaQuerySchema(Schema):
    region = fields.String(required=True, **REGION)


class CriteriaUpdateSchema(Schema):
    region = fields.String(required=True, **REGION)
    stall = fields.Nested(StallCriteriaSchema, load_default=None, metadata={"description": "示范摊位条件；未提交的项保持原值"})
    market = fields.Nested(MarketCriteriaSchema, load_default=None, metadata={"description": "示范市场条件；未提交的项保持原值"})


class CriteriaSchema(Schema):
    region = fields.String(required=True)
    source_region = fields.String(allow_none=True, metadata={"description": "条件来自哪个地区（就近上级）；null 为系统默认"})
    is_default = Bool(required=True)
    stall = fields.Nested(StallCriteriaSchema, required=True)
    market = fields.Nested(MarketCriteriaSchema, required=True)
    stall_criteria = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "各项条件的中文说明"})
    market_criteria = fields.Dict(keys=fields.String(), values=fields.String())


class CandidatesQuerySchema(PageArgs):
    region = fields.String(required=True, **REGION)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "stall 摊位 / market 市场", **KIND_LABELS})
    market_id = Int(load_default=None, validate=validate.Range(min=1), metadata={"description": "只看该市场的摊位"})
    all = QueryBool(load_default=False, metadata={"description": "true：列出范围内全部对象及各项条件是否满足"})


class CriterionSchema(Schema):
    key = fields.String(required=True)
    label = fields.String(required=True)
    ok = Bool(required=True)
    required = Bool(required=True, metadata={"description": "本地区是否要求该项"})


class CandidateSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": list(KINDS), **KIND_LABELS})
    target = fields.String(required=True, metadata={"description": "授予时的 target：摊位码（token）或市场 id"})
    market_id = Int(required=True)
    market_name = fields.String(required=True)
    region_code = fields.String(required=True)
    stall_id = Int()
    number = fields.String(metadata={"description": "摊位号"})
    merchant_name = fields.String(allow_none=True)
    operator_name = fields.String(allow_none=True)
    pledge_since = LocalDateTime(allow_none=True, metadata={"description": "诚信承诺连续生效起始时间"})
    stalls_in_business = Int(metadata={"description": "在营摊位数（市场）"})
    full_badge_pct = fields.Float(metadata={"description": "放心摊位占比（%）"})
    pledge_pct = fields.Float(metadata={"description": "承诺生效占比（%）"})
    meets = Bool(required=True, metadata={"description": "是否满足全部要求的条件"})
    criteria = fields.List(fields.Nested(CriterionSchema), required=True)
    criteria_region = fields.String(allow_none=True, metadata={"description": "适用条件来自的地区；null 为系统默认"})
    title_id = Int(allow_none=True, metadata={"description": "已持有的有效称号 id"})


class ConferSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS), metadata=KIND_LABELS)
    target = fields.String(required=True, validate=validate.Length(min=1, max=32),
                           metadata={"description": "摊位码（stall）或市场 id（market）", "example": "Ab3dE5gH7jK9"})
    citation = text(200, metadata={"description": "授予理由（简短事迹，公开显示，经内容安全检测）",
                                   "example": "亮照亮证齐全，诚信经营，群众满意"})
    title = fields.String(load_default=None, validate=validate.OneOf([*STALL_TITLES, MARKET_TITLE]),
                          metadata={"description": "摊位：示范摊位（默认）或 党员示范户；市场：示范市场"})


class TitleQuerySchema(PageArgs):
    region = fields.String(required=True, **REGION)
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS), metadata=KIND_LABELS)
    status = fields.String(load_default=None, validate=validate.OneOf(TITLE_STATUSES), metadata=STATUS_LABELS)


class TitleSchema(Schema):
    id = Int(required=True)
    kind = fields.String(required=True, metadata={"enum": list(KINDS), **KIND_LABELS})
    title = fields.String(required=True)
    status = fields.Function(lambda t: t.status_at(utcnow()), metadata={"enum": list(TITLE_STATUSES), **STATUS_LABELS})
    target = fields.Function(lambda t: t.stall.token if t.stall is not None else str(t.market_id))
    stall_number = fields.Function(lambda t: t.stall.number if t.stall is not None else None, allow_none=True)
    market_id = Int(required=True)
    market_name = fields.Function(lambda t: t.market.name)
    region_code = fields.String(required=True)
    citation = fields.String(required=True)
    conferred_at = LocalDateTime(required=True)
    conferred_by = Person("conferred_by_id")
    ends_at = LocalDateTime(required=True, metadata={"description": "称号失效时刻（不含）"})
    valid_through = fields.Function(lambda t: last_local_day(t.ends_at), metadata={"description": "有效期最后一天"})
    withdrawn_at = LocalDateTime(allow_none=True)
    withdraw_reason = fields.String(allow_none=True)


@blp.route("/models/criteria", methods=["GET"])
@blp.arguments(CriteriaQuerySchema, location="query")
@blp.response(200, CriteriaSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def get_criteria(args):
    """辖区适用的示范评选条件（本级未设置时沿用最近上级，均未设置时为系统默认）"""
    return services.get_criteria(current_user(), args["region"])


@blp.route("/models/criteria", methods=["PUT"])
@blp.arguments(CriteriaUpdateSchema)
@blp.response(200, CriteriaSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def set_criteria(data):
    """市场监管人员设置本辖区的示范评选条件；下级未自行设置的沿用；记入审计日志"""
    return services.set_criteria(current_user(), data)


@blp.route("/models/candidates", methods=["GET"])
@blp.arguments(CandidatesQuerySchema, location="query")
@blp.response(200, page_schema(CandidateSchema))
@blp.doc(security=BEARER)
@requires("regulator")
def candidates(args):
    """按条件实时计算的候选摊位或市场（不是手工填报），逐项列出条件是否满足"""
    return services.candidates(current_user(), args["region"], args["kind"], args["market_id"], args["all"],
                               args["page"], args["per_page"])


@blp.route("/models", methods=["POST"])
@blp.arguments(ConferSchema)
@blp.response(201, TitleSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def confer(data):
    """授予示范称号，有效期一年；对象当前不符合条件时拒绝并列出未满足的条件；记入审计日志"""
    return services.confer(current_user(), data)


@blp.route("/models", methods=["GET"])
@blp.arguments(TitleQuerySchema, location="query")
@blp.response(200, page_schema(TitleSchema))
@blp.doc(security=BEARER)
@requires("regulator")
def list_titles(args):
    """辖区内授予的示范称号（最新在前）"""
    return services.list_titles(current_user(), args["region"], args["kind"], args["status"], args["page"],
                                args["per_page"])


@blp.route("/models/<int:exemplar_id>", methods=["GET"])
@blp.response(200, TitleSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def get_title(exemplar_id):
    """查看一项示范称号"""
    return services.view_title(current_user(), exemplar_id)


@blp.route("/models/<int:exemplar_id>/withdraw", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, TitleSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def withdraw(data, exemplar_id):
    """撤销示范称号（须填写原因）；公示页立即不再显示；记入审计日志"""
    return services.withdraw(current_user(), exemplar_id, data["reason"])
