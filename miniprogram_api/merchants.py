"""Business entities (经营主体): created by a merchant, who becomes its owner."""
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.markets import services
from app.markets.models import MERCHANT_KINDS
from miniprogram_api.common import BEARER, Blueprint, Int, LocalDateTime, text

blp = Blueprint("merchants", __name__, description="经营主体")


class MerchantCreateSchema(Schema):
    name = text(100, metadata={"description": "名称（与营业执照一致）"})
    kind = fields.String(required=True, validate=validate.OneOf(MERCHANT_KINDS))
    uscc = fields.String(required=True, validate=validate.Length(equal=18),
                         metadata={"description": "统一社会信用代码（18 位，含校验位）",
                                   "example": "91350100M000100Y43"})
    operator_name = text(64, metadata={"description": "经营者或法定代表人姓名"})


class MerchantStallSchema(Schema):
    token = fields.String(required=True)
    number = fields.String(required=True)
    market_id = Int(required=True)
    market_name = fields.String(required=True)
    claim_status = fields.String(required=True)


class MerchantSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    uscc = fields.String(required=True)
    operator_name = fields.String(required=True)
    owner_id = Int(required=True)
    created_at = LocalDateTime()
    stalls = fields.Function(lambda merchant: MerchantStallSchema(many=True).dump(
        services.merchant_stalls(merchant.id)))


@blp.route("/merchants", methods=["POST"])
@blp.arguments(MerchantCreateSchema)
@blp.response(201, MerchantSchema)
@blp.doc(security=BEARER)
@requires()
def create_merchant(data):
    """登记经营主体（创建人成为其经营户）"""
    return services.create_merchant(current_user(), data)


@blp.route("/merchants", methods=["GET"])
@blp.response(200, MerchantSchema(many=True))
@blp.doc(security=BEARER)
@requires()
def my_merchants():
    """我登记的经营主体"""
    return services.list_my_merchants(current_user())


@blp.route("/merchants/<int:merchant_id>", methods=["GET"])
@blp.response(200, MerchantSchema)
@blp.doc(security=BEARER)
@requires()
def get_merchant(merchant_id):
    """查看经营主体（本人，或其摊位所在市场的管理方、辖区监管人员）"""
    return services.view_merchant(current_user(), merchant_id)
