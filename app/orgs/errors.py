"""Error codes of party organisations and memberships."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "ORG_NOT_FOUND": (404, "党组织不存在"),
    "ORG_PARENT_NOT_FOUND": (404, "上级党组织不存在"),
    "ORG_REGION_MISMATCH": (422, "下级党组织的行政区划须在上级党组织的行政区划之内"),
    "ORG_MARKET_NOT_FOUND": (404, "关联的市场不存在"),
    "ORG_NOT_RIDER_STATION": (422, "该党组织不是骑手站点党组织，无法以骑手身份加入"),
    "MEMBERSHIP_NOT_FOUND": (404, "党员身份申请不存在"),
    "MEMBERSHIP_EXISTS": (409, "您已提交过该党组织的党员身份申请"),
    "MEMBERSHIP_ALREADY_DECIDED": (409, "该党员身份申请已不在可操作的状态（可能是其他审核人刚刚处理），请刷新后查看"),
    "HOME_ORG_REQUIRED": (422, "流动党员请填写组织关系所在的党组织"),
    "JOIN_CODE_INVALID": (422, "加入码不正确：请向站点党支部书记索取最新的加入码，或不填加入码提交申请等待确认"),
    "JOIN_CODE_RATE_LIMITED": (429, "加入码尝试次数过多，请一小时后再试，或直接提交申请等待站点确认"),
    "STATION_JOIN_NOT_FOUND": (404, "加入站点的申请不存在"),
    "STATION_JOIN_DECIDED": (409, "该申请已处理（可能是其他审核人刚刚处理），请刷新后查看"),
    "REASON_REQUIRED": (422, "驳回时请填写原因"),
})

register_path_objects({'org_id': 'ORG_NOT_FOUND', 'membership_id': 'MEMBERSHIP_NOT_FOUND', 'request_id': 'STATION_JOIN_NOT_FOUND'})
