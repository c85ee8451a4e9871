"""Error codes of rider reports (骑手随手拍)."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "REPORT_NOT_FOUND": (404, "举报不存在"),
    "REPORT_CATEGORY_NOT_FOUND": (422, "举报类别不存在，请重新选择"),
    "REPORT_LOCATION_OUTSIDE_CHINA": (422, "定位不在中国境内，请开启定位后在现场重新提交"),
    "REPORT_PLACE_REQUIRED": (422, "请扫描摊位二维码，或填写店铺名称"),
    "REPORT_STALL_TOKEN_VOID": (422, "该摊位二维码已作废，请扫描摊位上的新二维码，或改填店铺名称和地址"),
    "REPORT_STALL_UNKNOWN": (422, "无法识别该摊位二维码，请重新扫描，或改填店铺名称和地址"),
    "REPORT_PHOTOS_REQUIRED": (422, "请上传 1 至 3 张现场照片"),
    "REPORT_REGION_UNKNOWN": (422, "无法确定所在区县：请先加入所在的骑手站点，再提交店铺举报"),
    "REPORT_RATE_LIMITED": (429, "提交举报过于频繁，请稍后再试"),
    "REPORT_NOT_OPEN": (409, "该举报已受理或已办结"),
    "REPORT_NOT_ACCEPTED": (409, "请先受理该举报，再作出核实结论"),
    "REPORT_NOT_UPHELD": (409, "只有核实属实、尚未整改的举报才能登记整改"),
    "REPORT_CLOSED": (409, "该举报已办结，不能转办"),
    "REPORT_TRANSFER_SAME_REGION": (422, "转办的地区与当前地区相同"),
    "REPORT_CATEGORY_POINTS_REGION": (422, "设置地区积分时请同时给出 region（行政区划代码）"),
    "REPORT_REGION_REQUIRED": (422, "您管辖多个地区，请用 region 参数指明统计哪个地区"),
})

register_path_objects({"report_id": "REPORT_NOT_FOUND"})

register_codes({
    "REPORT_ALREADY_DECIDED": (409, "该举报已作出核实结论"),
    "REPORT_CATEGORY_UNKNOWN": (404, "举报类别不存在"),
})
