from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.auth import current_user, requires
from app.identity.services import appoint_market_manager
from app.markets import services
from app.markets.models import MARKET_KINDS
from miniprogram_api.common import BEARER, LocalDateTime, text

blp = Blueprint("markets", __name__, description="市场")


class MarketCreateSchema(Schema):
    name = text(100)
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"),
                                metadata={"description": "行政区划代码（6 位）", "example": "450403"})
    address = text(200, required=False, load_default=None)
    kind = fields.String(load_default="综合市场", validate=validate.OneOf(MARKET_KINDS))
    lat = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    lng = fields.Float(load_default=None, validate=validate.Range(-180, 180))


class MarketSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    region_code = fields.String(required=True)
    address = fields.String(allow_none=True)
    kind = fields.String(required=True)
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    created_at = LocalDateTime()


class AppointManagerSchema(Schema):
    openid = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "被任命人的 openid（未登录过也可先任命）"})
    reason = text(500, required=False, load_default=None)


class GrantSchema(Schema):
    user_id = fields.Integer(required=True)
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


@blp.route("/markets/<int:market_id>", methods=["GET"])
@blp.response(200, MarketSchema)
@blp.doc(security=BEARER)
@requires("regulator", "market_manager")
def get_market(market_id):
    """查看市场（辖区内的监管人员或本市场管理方）"""
    return services.view_market(current_user(), market_id)


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
