"""Error codes of activities, check-in, points and care stations."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "ACTIVITY_NOT_FOUND": (404, "活动不存在"),
    "ACTIVITY_CANCELLED": (409, "活动已取消"),
    "ACTIVITY_ALREADY_CANCELLED": (409, "活动已经取消，无需重复操作"),
    "ACTIVITY_ENDED": (409, "活动已结束"),
    "ACTIVITY_FULL": (409, "活动名额已满"),
    "ACTIVITY_TIME_INVALID": (422, "活动时间有误：结束时间须晚于开始时间，签到时段须与活动时间衔接"),
    "ACTIVITY_PLACE_INCOMPLETE": (422, "活动地点须同时填写纬度、经度和签到半径"),
    "ACTIVITY_AUDIENCE_INVALID": (422, "只有骑手站点党组织的活动可以面向全站骑手"),
    "ACTIVITY_NOT_ELIGIBLE": (403, "您不在该活动的参加范围内"),
    "LEAVE_NOT_FOUND": (404, "请假申请不存在"),
    "LEAVE_EXISTS": (409, "您已提交过请假申请"),
    "LEAVE_ALREADY_DECIDED": (409, "该请假申请已审核"),
    "CHECKIN_CODE_EXPIRED": (410, "签到码已过期，请扫描组织者手机上最新的签到码"),
    "CHECKIN_CODE_FORGED": (400, "签到码无效，请扫描组织者出示的签到码"),
    "CHECKIN_CODE_OTHER_ACTIVITY": (409, "这是其他活动的签到码，请确认后重新扫描"),
    "CHECKIN_NOT_OPEN": (409, "签到尚未开始"),
    "CHECKIN_CLOSED": (409, "签到已结束"),
    "CHECKIN_OUTSIDE_AREA": (403, "您不在活动签到范围内，请到达活动地点后再签到"),
    "CHECKIN_LOCATION_REQUIRED": (422, "本活动需要定位签到，请允许获取位置后重试"),
    "CHECKIN_NOT_ELIGIBLE": (403, "您不在该活动的签到范围内（须为本组织已认定党员或本站点骑手）"),
    "CHECKIN_FULL": (409, "活动人数已满，无法签到"),
    "LOCATION_INCOMPLETE": (422, "纬度和经度须同时提供（GCJ-02，即 wx.getLocation({type: 'gcj02'}) 的返回值）"),
    "CHECKIN_ACCURACY_TOO_POOR": (422, "定位误差太大（超过 500 米），无法确认您在活动地点：请打开手机定位（GPS）、到开阔处后重新扫码"),
    "CHECKIN_RATE_LIMITED": (429, "扫码过于频繁，请稍后再试；如多次失败请联系组织者手工签到"),
    "POINTS_NOT_MEMBER": (422, "只能为本组织党员或本站点骑手调整积分"),
    "POINTS_DELTA_INVALID": (422, "积分调整值不能为 0"),
    "CARE_STATION_OUT_OF_REGION": (403, "驿站须位于您所在党组织的辖区内"),
    "CARE_STATION_NOT_FOUND": (404, "找不到该驿站"),
    "CHECKIN_CODE_IMAGE_EXPIRED": (410, "签到码图片已过期，请刷新签到码"),
    "CHECKIN_CODE_IMAGE_INVALID": (404, "签到码图片地址无效"),
})

register_path_objects({"activity_id": "ACTIVITY_NOT_FOUND", "leave_id": "LEAVE_NOT_FOUND",
                       "station_id": "CARE_STATION_NOT_FOUND"},
                      not_visible=("ACTIVITY_NOT_ELIGIBLE",))
