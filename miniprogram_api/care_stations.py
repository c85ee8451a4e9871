from marshmallow import Schema, fields, validate

from app.activities import queries, services
from app.activities.models import AMENITIES
from app.identity.auth import current_user, requires
from app.core.pagination import PageArgs, page_schema
from miniprogram_api.common import REGION_CODE, latitude, longitude, BEARER, Blueprint, Bool, Int, LocalDateTime, PatchSchema, text

blp = Blueprint("care_stations", __name__, description="暖心驿站")


class CareStationCreateSchema(Schema):
    name = text(100)
    address = text(200, required=False, load_default=None)
    region_code = fields.String(required=True, validate=REGION_CODE)
    org_id = Int(load_default=None, metadata={"description": "负责的党组织（支部书记须填写）"})
    lat = latitude(required=True)
    lng = longitude(required=True)
    hours = text(64, required=False, load_default=None, metadata={"example": "全天开放"})
    amenities = fields.List(fields.String(validate=validate.OneOf(list(AMENITIES))), load_default=list,
                            validate=validate.Length(max=len(AMENITIES)),
                            metadata={"description": "water 饮水 / charging 充电 / microwave 微波炉 / rest 休息 / toilet 卫生间 / first_aid 急救药箱"})


class CareStationUpdateSchema(PatchSchema):
    name = text(100, required=False)
    address = text(200, required=False, allow_none=True)
    hours = text(64, required=False, allow_none=True, metadata={"example": "08:00–22:00"})
    amenities = fields.List(fields.String(validate=validate.OneOf(list(AMENITIES))),
                            validate=validate.Length(max=len(AMENITIES)))
    closed = Bool(metadata={"description": "true 暂停开放（不再出现在附近驿站中），false 恢复开放"})


class CareStationSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    address = fields.String(allow_none=True)
    region_code = fields.String(required=True)
    org_id = Int(allow_none=True)
    lat = latitude(required=True)
    lng = longitude(required=True)
    hours = fields.String(allow_none=True)
    amenities = fields.List(fields.String(), required=True)
    amenity_labels = fields.Function(lambda s: [AMENITIES.get(a, a) for a in s.amenities or []])
    closed = fields.Function(lambda s: s.closed_at is not None, metadata={"description": "是否暂停开放"})
    created_at = LocalDateTime()


class NearbyArgs(PageArgs):
    lat = latitude(required=True)
    lng = longitude(required=True)
    radius_m = Int(load_default=3000, validate=validate.Range(1, 50000))


class NearbyStationSchema(CareStationSchema):
    distance_m = Int(required=True, metadata={"description": "距离（米）"})


NearbyPageSchema = page_schema(NearbyStationSchema)


@blp.route("/care-stations", methods=["POST"])
@blp.arguments(CareStationCreateSchema)
@blp.response(201, CareStationSchema)
@blp.doc(security=BEARER)
@requires("regulator", "branch_secretary")
def create_care_station(data):
    """登记暖心驿站（辖区监管人员，或党组织书记在本组织辖区内）"""
    return services.create_care_station(current_user(), data)


@blp.route("/care-stations/<int:station_id>", methods=["PATCH"])
@blp.arguments(CareStationUpdateSchema)
@blp.response(200, CareStationSchema)
@blp.doc(security=BEARER)
@requires("regulator", "branch_secretary")
def update_care_station(data, station_id):
    """修改驿站的开放时间、设施、名称、地址，暂停或恢复开放（辖区监管人员或负责的党组织书记；记入审计日志）"""
    return services.update_care_station(current_user(), station_id, data)


@blp.route("/care-stations", methods=["GET"])
@blp.arguments(NearbyArgs, location="query")
@blp.response(200, NearbyPageSchema)
def nearby_care_stations(args):
    """附近的暖心驿站，由近到远（无需登录）"""
    return queries.nearby_care_stations(args["lat"], args["lng"], args["radius_m"], args["page"], args["per_page"])
