from flask import Response, url_for
from marshmallow import Schema, fields, validate, validates_schema

from app.activities import checkin as checkin_service
from app.activities import queries, services
from app.activities.export import attendance_filename, attendance_xlsx
from app.activities.models import ACTIVITY_TYPES, AUDIENCES
from app.identity.auth import current_user, requires
from app.core.errors import CODES, APIError
from app.core.idempotency import idempotent
from app.core.pagination import PageArgs, page_schema
from app.core.time import utcnow
from app.orgs.services import get_org
from app.worklists import orgs as worklists
from miniprogram_api.common import (latitude, longitude, BEARER, PatchSchema, Person, Blueprint, Bool, DecisionSchema, Int, LocalDateTime, ReasonSchema, own_read,
                                    text, xlsx_doc, xlsx_download)

blp = Blueprint("activities", __name__, description="组织生活、签到与积分")

ORGANISERS = ("branch_secretary", "market_manager", "regulator")


class ActivityCreateSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(ACTIVITY_TYPES),
                         metadata={"description": "、".join(ACTIVITY_TYPES)})
    title = text(100)
    description = text(2000, required=False, load_default=None)
    starts_at = fields.DateTime(required=True, metadata={"description": "开始时间；不带时区视为北京时间"})
    ends_at = fields.DateTime(required=True)
    checkin_opens_at = fields.DateTime(load_default=None, metadata={"description": "默认开始前 30 分钟"})
    checkin_closes_at = fields.DateTime(load_default=None, metadata={"description": "默认活动结束时"})
    place_name = text(200, required=False, load_default=None)
    lat = latitude(load_default=None)
    lng = longitude(load_default=None)
    radius_m = Int(load_default=None, validate=validate.Range(10, 50000),
                              metadata={"description": "签到范围半径（米）"})
    capacity = Int(load_default=None, validate=validate.Range(1, 100000))
    points = Int(load_default=0, validate=validate.Range(0, 1000), metadata={"description": "签到积分"})
    audience = fields.String(load_default="members", validate=validate.OneOf(list(AUDIENCES)),
                             metadata={"description": "members 本组织党员 / station_riders 本站点全体骑手"})


class ActivityUpdateSchema(PatchSchema):
    """Only the fields sent change; a field sent as null clears it (not the times or the title)."""
    title = text(100, required=False)
    description = text(2000, required=False, allow_none=True)
    starts_at = fields.DateTime(metadata={"description": "不带时区视为北京时间"})
    ends_at = fields.DateTime()
    checkin_opens_at = fields.DateTime()
    checkin_closes_at = fields.DateTime()
    place_name = text(200, required=False, allow_none=True)
    lat = latitude(allow_none=True)
    lng = longitude(allow_none=True)
    radius_m = Int(allow_none=True, validate=validate.Range(10, 50000), metadata={"description": "签到范围半径（米）"})
    capacity = Int(allow_none=True, validate=validate.Range(1, 100000))


class ActivitySchema(Schema):
    id = Int(required=True)
    org_id = Int(required=True)
    type = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    starts_at = LocalDateTime(required=True)
    ends_at = LocalDateTime(required=True)
    checkin_opens_at = LocalDateTime(required=True)
    checkin_closes_at = LocalDateTime(required=True)
    place_name = fields.String(allow_none=True)
    lat = latitude(allow_none=True)
    lng = longitude(allow_none=True)
    radius_m = Int(allow_none=True)
    capacity = Int(allow_none=True)
    points = Int(required=True)
    audience = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "scheduled / cancelled"})
    cancel_reason = fields.String(allow_none=True)


class ActivityListArgs(PageArgs):
    org = Int(load_default=None, metadata={"description": "党组织 id"})
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "开始日期（含）"})
    to = fields.Date(load_default=None, metadata={"description": "结束日期（含）"})


class RegistrationSchema(Schema):
    id = Int(required=True)
    activity_id = Int(required=True)
    user_id = Int(required=True)
    created_at = LocalDateTime()


class LeaveSchema(Schema):
    id = Int(required=True)
    activity_id = Int(required=True)
    user_id = Int(required=True)
    person = Person(metadata={"description": "请假人：姓名与脱敏手机号"})
    reason = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "pending / approved / rejected"})
    review_reason = fields.String(allow_none=True)
    created_at = LocalDateTime()


class CheckinCodeSchema(Schema):
    payload = fields.String(required=True, metadata={"example": "c1.12.59312345.Ab3dE_9fGh1K"})
    slot = Int(required=True)
    expires_in = Int(required=True, metadata={"description": "距换码的秒数（上一个码仍可再用 30 秒）"})
    png_url = fields.String(required=True, metadata={"description": "签到码图片地址（60 秒内有效，无需登录头，可直接用于 <image src>）"})


class CheckinRequestSchema(Schema):
    payload = fields.String(required=True, validate=validate.Length(min=1, max=128))
    lat = latitude(load_default=None)
    lng = longitude(load_default=None)
    accuracy = fields.Float(load_default=None, validate=validate.Range(0, 100000),
                            metadata={"description": "定位精度（米，即 wx.getLocation 返回的 accuracy）。"
                                                     "误差超过 500 米的定位无法证明身在现场，签到被拒绝"
                                                     "（CHECKIN_ACCURACY_TOO_POOR）"})

    @validates_schema
    def both_coordinates(self, data, **kwargs):
        if (data.get("lat") is None) != (data.get("lng") is None):
            raise APIError(code="LOCATION_INCOMPLETE", details={"fields": {"lat": ["纬度和经度须同时提供"]}})


class CheckinSchema(Schema):
    id = Int(required=True)
    activity_id = Int(required=True)
    user_id = Int(required=True)
    checked_in_at = LocalDateTime(required=True)
    method = fields.String(required=True, metadata={"description": "rotating_qr / manual"})
    status = fields.String(required=True, metadata={"description": "on_time / late"})
    distance_m = fields.Float(allow_none=True)
    location_verdict = fields.String(required=True)
    location_flagged = Bool(attribute="flagged", required=True)


class ManualCheckinSchema(Schema):
    user_id = Int(required=True)
    reason = text(500)


class AttendanceArgs(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


class AttendanceRowSchema(Schema):
    user_id = Int(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "脱敏手机号"})
    state = fields.String(required=True, metadata={"description": "present / late / on_leave / absent"})
    state_label = fields.String(required=True)
    registered = Bool(required=True)
    checked_in_at = LocalDateTime(allow_none=True)
    method = fields.String(allow_none=True)
    distance_m = fields.Float(allow_none=True)
    location_flagged = Bool(required=True)
    leave_status = fields.String(allow_none=True)
    leave_reason = fields.String(allow_none=True)


class AttendanceCountsSchema(Schema):
    expected = Int(required=True)
    present = Int(required=True)
    late = Int(required=True)
    on_leave = Int(required=True)
    absent = Int(required=True)
    checked_in = Int(required=True)
    registered = Int(required=True)
    location_flagged = Int(required=True)
    refused_scans = Int(required=True)


class AttendanceSchema(Schema):
    activity_id = Int(required=True)
    title = fields.String(required=True)
    counts = fields.Nested(AttendanceCountsSchema, required=True)
    rows = fields.List(fields.Nested(AttendanceRowSchema), required=True)


class PointsAdjustSchema(Schema):
    user_id = Int(required=True)
    delta = Int(required=True, validate=validate.Range(-1000, 1000))
    reason = text(500)


class PointsEntrySchema(Schema):
    id = Int(required=True)
    org_id = Int(allow_none=True)
    activity_id = Int(allow_none=True)
    reason = fields.String(required=True, metadata={"description": "checkin 签到 / manual 手工调整 / report 骑手随手拍经核实属实"})
    delta = Int(required=True)
    note = fields.String(allow_none=True)
    created_at = LocalDateTime(required=True)


class MyPointsSchema(page_schema(PointsEntrySchema)):
    balance = Int(required=True)


class LeaderboardArgs(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(["month", "all"]))
    limit = Int(load_default=50, validate=validate.Range(1, 100))


class LeaderboardItemSchema(Schema):
    rank = Int(required=True)
    user_id = Int(allow_none=True, metadata={"description": "仅组织者可见（以及本人）"})
    name = fields.String(required=True, metadata={"description": "组织者看到全名；其他人看到脱敏姓名（王*军），"
                                                                 "除非本人选择公开"})
    points = Int(required=True)
    is_me = Bool(required=True)


class LeaderboardSchema(Schema):
    org_id = Int(required=True)
    period = fields.String(required=True)
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String(allow_none=True)
    items = fields.List(fields.Nested(LeaderboardItemSchema), required=True)
    total = Int(required=True)
    me = fields.Nested(LeaderboardItemSchema, allow_none=True, metadata={"description": "我的名次"})


# -- activities -------------------------------------------------------------------------------
@blp.route("/orgs/<int:org_id>/activities", methods=["POST"])
@blp.arguments(ActivityCreateSchema)
@blp.response(201, ActivitySchema)
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def create_activity(data, org_id):
    """安排活动（主题党日、三会一课、志愿服务等；描述先经内容安全检测）"""
    return services.create_activity(current_user(), get_org(org_id), data)


@blp.route("/activities", methods=["GET"])
@blp.arguments(ActivityListArgs, location="query")
@blp.response(200, page_schema(ActivitySchema))
@blp.doc(security=BEARER)
@requires()
def list_activities(args):
    """我能看到的活动：所在党组织的、所在站点面向骑手的、我负责的"""
    return queries.visible_activities(current_user(), args["org"], args["from_"], args["to"],
                                      args["page"], args["per_page"])


@blp.route("/activities/<int:activity_id>", methods=["GET"])
@blp.response(200, ActivitySchema)
@blp.doc(security=BEARER)
@requires()
def get_activity(activity_id):
    """活动详情"""
    return services.view_activity(current_user(), activity_id)


@blp.route("/activities/<int:activity_id>", methods=["PATCH"])
@blp.arguments(ActivityUpdateSchema)
@blp.response(200, ActivitySchema)
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def update_activity(data, activity_id):
    """修改活动（时间、地点、说明、人数上限）；时间或地点变更时通知已报名的人；记入审计日志"""
    return services.update_activity(current_user(), activity_id, data)


@blp.route("/activities/<int:activity_id>/cancel", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, ActivitySchema)
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def cancel_activity(data, activity_id):
    """取消活动（须填原因；记入审计日志）"""
    return services.cancel_activity(current_user(), activity_id, data["reason"])


@blp.route("/activities/<int:activity_id>/registrations", methods=["POST"])
@blp.response(201, RegistrationSchema)
@blp.alt_response(200, schema=RegistrationSchema, description="已报名过")
@blp.doc(security=BEARER)
@requires()
def register(activity_id):
    """报名参加活动"""
    registration, created = services.register(current_user(), activity_id)
    return registration, 201 if created else 200


@blp.route("/activities/<int:activity_id>/leave", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(201, LeaveSchema)
@blp.doc(security=BEARER)
@requires()
def ask_leave(data, activity_id):
    """请假（组织者审核）"""
    return services.ask_leave(current_user(), activity_id, data["reason"])


@blp.route("/leave-requests/<int:leave_id>/review", methods=["POST"])
@blp.arguments(DecisionSchema)
@blp.response(200, LeaveSchema)
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def review_leave(data, leave_id):
    """审核请假：approve 准假 / reject 不准（须填原因；记入审计日志）"""
    return services.review_leave(current_user(), leave_id, data["decision"], data["reason"])


# -- check-in ---------------------------------------------------------------------------------
@blp.route("/activities/<int:activity_id>/checkin-code", methods=["GET"])
@blp.response(200, CheckinCodeSchema)
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def checkin_code(activity_id):
    """当前的滚动签到码（每 30 秒更换；当前和上一个码有效）"""
    activity, code = services.checkin_code(current_user(), activity_id)
    signed = checkin_service.signed_code_image(activity.id, code["slot"])
    code["png_url"] = url_for("activities.signed_checkin_code_png", signed=signed, _external=False)
    return code


@blp.route("/activities/<int:activity_id>/checkin-code.png", methods=["GET"])
@blp.response(200, description="签到码图片（PNG）", content_type="image/png")
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def checkin_code_png(activity_id):
    """当前签到码的二维码图片"""
    _, code = services.checkin_code(current_user(), activity_id)
    response = Response(checkin_service.code_png(code["payload"]), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/checkin-code-images/<signed>.png", methods=["GET"])
@blp.response(200, description="签到码图片（PNG）：无需登录头，地址签名 60 秒内有效", content_type="image/png")
def signed_checkin_code_png(signed):
    """签到码图片（供小程序 <image src> 直接加载；地址来自 GET /activities/{id}/checkin-code 的 png_url）"""
    response = Response(checkin_service.code_png(checkin_service.code_image_payload(signed)), mimetype="image/png")
    response.headers["Cache-Control"] = f"private, max-age={checkin_service.CODE_IMAGE_SECONDS}"
    return response


@blp.route("/activities/<int:activity_id>/checkins", methods=["POST"])
@idempotent
@blp.arguments(CheckinRequestSchema)
@blp.response(201, CheckinSchema)
@blp.alt_response(200, schema=CheckinSchema, description="已签到过：返回第一次的签到记录")
@blp.doc(security=BEARER)
@requires()
def check_in(data, activity_id):
    """扫码签到（校验签到码、时段、范围与参加资格；重复提交返回第一次的记录）"""
    place = checkin_service.Place(data["lat"], data["lng"], data["accuracy"])
    record, created = checkin_service.scan(current_user(), activity_id, data["payload"], place, utcnow())
    return record, 201 if created else 200


@blp.route("/activities/<int:activity_id>/checkins/manual", methods=["POST"])
@blp.arguments(ManualCheckinSchema)
@blp.response(201, CheckinSchema)
@blp.alt_response(200, schema=CheckinSchema, description="已签到过")
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def manual_check_in(data, activity_id):
    """组织者手工补签（须填原因；记入审计日志）"""
    record, created = services.manual_checkin(current_user(), activity_id, data["user_id"], data["reason"])
    return record, 201 if created else 200


class RefusedScanSchema(Schema):
    user_id = Int(required=True)
    person = Person(metadata={"description": "姓名与脱敏手机号"})
    code = fields.String(required=True, metadata={"description": "拒绝原因代码，如 CHECKIN_OUTSIDE_AREA"})
    reason = fields.Function(lambda r: CODES.get(r.code, (0, r.code))[1], metadata={"description": "拒绝原因"})
    count = Int(required=True, metadata={"description": "因同一原因被拒的次数"})
    last_at = LocalDateTime(attribute="at", required=True, metadata={"description": "最近一次"})
    distance_m = fields.Float(allow_none=True, metadata={"description": "最近一次距活动地点（米）"})
    accuracy_m = fields.Float(allow_none=True, metadata={"description": "最近一次定位精度（米）"})


@blp.route("/activities/<int:activity_id>/refused-scans", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(RefusedScanSchema))
@blp.doc(security=BEARER)
@requires(*ORGANISERS)
def refused_scans(args, activity_id):
    """被拒绝的签到：谁、为什么（不在范围内、码过期……）、几次、最近一次何时，便于组织者核实补签"""
    return worklists.refused_scans(current_user(), activity_id, args["page"], args["per_page"])


@blp.route("/activities/<int:activity_id>/attendance", methods=["GET"])
@blp.arguments(AttendanceArgs, location="query")
@blp.response(200, AttendanceSchema)
@blp.doc(security=BEARER, responses={"200": {"description": "签到情况；format=xlsx 时为 Excel 签到表",
                                             "content": {"application/json": {"schema": AttendanceSchema},
                                                         **xlsx_doc("")["content"]}}})
@requires(*ORGANISERS)
def attendance(args, activity_id):
    """签到情况：按时、迟到、请假、缺席（format=xlsx 导出签到表；手机号脱敏）"""
    activity = services.get_activity(activity_id)
    services.authorize_activity_organiser(current_user(), activity)
    sheet = queries.attendance(activity)
    if args["format"] == "xlsx":
        org = services.activity_org(activity)
        return xlsx_download(attendance_xlsx(activity, org.name, sheet), attendance_filename(activity))
    return sheet


# -- points -----------------------------------------------------------------------------------
@blp.route("/orgs/<int:org_id>/points", methods=["POST"])
@blp.arguments(PointsAdjustSchema)
@blp.response(201, PointsEntrySchema)
@blp.doc(security=BEARER)
@requires("branch_secretary")
def adjust_points(data, org_id):
    """支部书记调整积分（须填原因；记入审计日志）"""
    return services.adjust_points(current_user(), get_org(org_id), data["user_id"], data["delta"], data["reason"])


@blp.route("/me/points", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@own_read("points")
@blp.response(200, MyPointsSchema)
@blp.doc(security=BEARER)
@requires()
def my_points(args):
    """我的积分：余额与明细"""
    return queries.points_page(current_user().id, args["page"], args["per_page"])


@blp.route("/orgs/<int:org_id>/leaderboard", methods=["GET"])
@blp.arguments(LeaderboardArgs, location="query")
@blp.response(200, LeaderboardSchema)
@blp.doc(security=BEARER)
@requires()
def leaderboard(args, org_id):
    """积分榜（本月按北京时间自然月，或累计）"""
    user = current_user()
    org = get_org(org_id)
    full_names = services.authorize_org_reader(user, org)
    return queries.leaderboard(org.id, args["period"], utcnow(), args["limit"], user.id, full_names)
