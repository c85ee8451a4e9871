from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.core.pagination import PageArgs, page_schema
from app.orgs import services
from app.worklists import orgs as worklists
from app.orgs.models import MEMBER_STANDINGS, MEMBERSHIP_STATUSES, ORG_KINDS, ORG_SECTORS
from miniprogram_api.common import REGION_CODE, BEARER, Person, Blueprint, Bool, DecisionSchema, Int, LocalDateTime, ReasonSchema, text

blp = Blueprint("orgs", __name__, description="党组织与党员")


class OrgCreateSchema(Schema):
    name = text(100)
    kind = fields.String(required=True, validate=validate.OneOf(list(ORG_KINDS)),
                         metadata={"description": "committee 党委 / general_branch 党总支 / branch 党支部 / joint_branch 联合党支部"})
    sector = fields.String(required=True, validate=validate.OneOf(list(ORG_SECTORS)),
                           metadata={"description": "market 专业市场 / rider 快递外卖骑手 / enterprise 小微企业"})
    region_code = fields.String(required=True, validate=REGION_CODE,
                                metadata={"example": "450403"})
    parent_id = Int(load_default=None, metadata={"description": "上级党组织"})
    market_id = Int(load_default=None, metadata={"description": "所在专业市场"})
    station = text(100, required=False, load_default=None, metadata={"example": "万秀区美团站"})
    platform = text(32, required=False, load_default=None, metadata={"example": "美团"})


class OrgSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_label = fields.Function(lambda org: ORG_KINDS.get(org.kind))
    sector = fields.String(required=True)
    sector_label = fields.Function(lambda org: ORG_SECTORS.get(org.sector))
    region_code = fields.String(required=True)
    parent_id = Int(allow_none=True)
    market_id = Int(allow_none=True)
    station = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    created_at = LocalDateTime()


class MembershipClaimSchema(Schema):
    standing = fields.String(required=True, validate=validate.OneOf(list(MEMBER_STANDINGS)),
                             metadata={"description": "formal 正式党员 / probationary 预备党员"})
    floating = Bool(load_default=False, metadata={"description": "是否流动党员"})
    home_org_name = text(100, required=False, load_default=None,
                         metadata={"description": "流动党员组织关系所在党组织"})


class MembershipSchema(Schema):
    id = Int(required=True)
    org_id = Int(required=True)
    user_id = Int(required=True)
    person = Person(metadata={"description": "申请人：姓名与脱敏手机号"})
    standing = fields.String(required=True)
    standing_label = fields.Function(lambda m: MEMBER_STANDINGS.get(m.standing))
    floating = Bool(required=True)
    home_org_name = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending / verified / rejected"})
    review_reason = fields.String(allow_none=True)
    reviewed_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class MembershipListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(MEMBERSHIP_STATUSES))


class JoinStationSchema(Schema):
    join_code = fields.String(load_default=None, validate=validate.Length(min=4, max=16),
                              metadata={"description": "站点党支部书记分享的加入码；不填则提交申请，待站点确认"})


class StationJoinSchema(Schema):
    status = fields.String(required=True, metadata={"description": "joined 已加入 / pending 已申请，待站点确认"})
    org_id = Int(required=True)
    joined_at = LocalDateTime(allow_none=True)
    request_id = Int(allow_none=True, attribute="request.id")


class JoinRequestSchema(Schema):
    id = Int(required=True)
    org_id = Int(required=True)
    user_id = Int(required=True)
    person = Person(metadata={"description": "申请人：姓名与脱敏手机号"})
    status = fields.String(required=True, metadata={"description": "pending / approved / rejected"})
    review_reason = fields.String(allow_none=True)
    reviewed_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class JoinRequestListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(["pending", "approved", "rejected"]))


class JoinCodeSchema(Schema):
    org_id = Int(required=True, attribute="id")
    join_code = fields.String(allow_none=True, metadata={"description": "null 表示未启用加入码（只能申请后确认）"})


class OrgSearchArgs(PageArgs):
    region = fields.String(load_default=None, validate=REGION_CODE,
                           metadata={"description": "行政区划（含下级）", "example": "450403"})
    type = fields.String(load_default=None, validate=validate.OneOf(list(ORG_KINDS)),
                         metadata={"description": "组织类型：committee / general_branch / branch / joint_branch"})
    sector = fields.String(load_default=None, validate=validate.OneOf(list(ORG_SECTORS)),
                           metadata={"description": "领域：market 专业市场 / rider 快递外卖骑手 / enterprise 小微企业"})
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=50),
                      metadata={"description": "名称或站点包含的文字", "example": "美团"})


class MemberSchema(Schema):
    membership_id = Int(required=True, attribute="id")
    user_id = Int(required=True)
    person = Person(metadata={"description": "姓名与脱敏手机号"})
    standing = fields.String(required=True)
    standing_label = fields.Function(lambda m: MEMBER_STANDINGS.get(m.standing))
    floating = Bool(required=True, metadata={"description": "流动党员"})
    home_org_name = fields.String(allow_none=True)
    verified_at = LocalDateTime(attribute="reviewed_at", allow_none=True)


@blp.route("/orgs", methods=["GET"])
@blp.arguments(OrgSearchArgs, location="query")
@blp.response(200, page_schema(OrgSchema))
@blp.doc(security=BEARER)
@requires()
def find_orgs(args):
    """查找党组织或骑手站点（按行政区划、类型、名称或站点）；只含公开信息"""
    return worklists.find_orgs(args["region"], args["type"], args["sector"], args["q"], args["page"], args["per_page"])


@blp.route("/orgs/<int:org_id>/members", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(MemberSchema))
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def members(args, org_id):
    """本组织已认定的党员名单（姓名、脱敏手机号、正式/预备、是否流动党员）"""
    return worklists.members(current_user(), org_id, args["page"], args["per_page"])


@blp.route("/orgs", methods=["POST"])
@blp.arguments(OrgCreateSchema)
@blp.response(201, OrgSchema)
@blp.doc(security=BEARER)
@requires("regulator", "branch_secretary")
def create_org(data):
    """创建党组织（辖区监管人员，或上级党组织书记）"""
    return services.create_org(current_user(), data)


@blp.route("/orgs/<int:org_id>", methods=["GET"])
@blp.response(200, OrgSchema)
@blp.doc(security=BEARER)
@requires()
def get_org(org_id):
    """党组织基本信息（名称、类型、站点，供党员认领、骑手加入）"""
    return services.get_org(org_id)


@blp.route("/orgs/<int:org_id>/memberships", methods=["POST"])
@blp.arguments(MembershipClaimSchema)
@blp.response(201, MembershipSchema)
@blp.doc(security=BEARER)
@requires()
def claim_membership(data, org_id):
    """申报党员身份（支部书记审核后生效；流动党员填写组织关系所在党组织）"""
    return services.claim_membership(current_user(), services.get_org(org_id), data)


@blp.route("/orgs/<int:org_id>/memberships", methods=["GET"])
@blp.arguments(MembershipListArgs, location="query")
@blp.response(200, page_schema(MembershipSchema))
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator", "market_manager")
def list_memberships(args, org_id):
    """党员身份申请列表（待审核等）"""
    return services.list_memberships(current_user(), services.get_org(org_id), args["status"],
                                     args["page"], args["per_page"])


@blp.route("/memberships/<int:membership_id>/review", methods=["POST"])
@blp.arguments(DecisionSchema)
@blp.response(200, MembershipSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def review_membership(data, membership_id):
    """审核党员身份：approve 认定 / reject 驳回（须填原因；记入审计日志）"""
    return services.review_membership(current_user(), membership_id, data["decision"], data["reason"])


@blp.route("/memberships/<int:membership_id>/revoke", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, MembershipSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def revoke_membership(data, membership_id):
    """撤销已认定的党员身份（转出、不再是党员等；须填原因；记入审计日志，公示页随即更新）"""
    return services.revoke_membership(current_user(), membership_id, data["reason"])


@blp.route("/orgs/<int:org_id>/riders", methods=["POST"])
@blp.arguments(JoinStationSchema, required=False)
@blp.response(201, StationJoinSchema)
@blp.alt_response(200, schema=StationJoinSchema, description="已加入过，或已申请过")
@blp.alt_response(202, schema=StationJoinSchema, description="已提交申请，待站点党支部确认")
@blp.doc(security=BEARER)
@requires()
def join_station(data, org_id):
    """骑手加入站点：填写加入码立即加入；不填则提交申请，由站点党支部确认后加入（之后可报名、签到面向全站骑手的活动）"""
    outcome, created = services.join_station(current_user(), services.get_org(org_id), data.get("join_code"))
    if outcome.status == "pending":
        return outcome, 202 if created else 200
    return outcome, 201 if created else 200


@blp.route("/orgs/<int:org_id>/rider-requests", methods=["GET"])
@blp.arguments(JoinRequestListArgs, location="query")
@blp.response(200, page_schema(JoinRequestSchema))
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def list_rider_requests(args, org_id):
    """待确认的骑手加入申请（最早的在前）"""
    return services.list_join_requests(current_user(), services.get_org(org_id), args["status"],
                                       args["page"], args["per_page"])


@blp.route("/rider-requests/<int:request_id>/review", methods=["POST"])
@blp.arguments(DecisionSchema)
@blp.response(200, JoinRequestSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def review_rider_request(data, request_id):
    """确认（approve）或拒绝（reject，须填原因）骑手加入站点的申请"""
    return services.review_join_request(current_user(), request_id, data["decision"], data["reason"])


@blp.route("/orgs/<int:org_id>/join-code", methods=["GET"])
@blp.response(200, JoinCodeSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def view_join_code(org_id):
    """查看站点当前的加入码（分享给本站骑手）"""
    return services.view_join_code(current_user(), services.get_org(org_id))


@blp.route("/orgs/<int:org_id>/join-code", methods=["POST"])
@blp.response(200, JoinCodeSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def new_join_code(org_id):
    """生成新的加入码（旧码立即失效）"""
    return services.new_join_code(current_user(), services.get_org(org_id))


@blp.route("/orgs/<int:org_id>/join-code", methods=["DELETE"])
@blp.response(200, JoinCodeSchema)
@blp.doc(security=BEARER)
@requires("branch_secretary", "regulator")
def disable_join_code(org_id):
    """停用加入码（此后骑手只能申请、由站点确认）"""
    return services.disable_join_code(current_user(), services.get_org(org_id))
