"""Error codes of the coverage figures."""
from app.core.errors import register_codes

register_codes({
    "STATS_REGION_REQUIRED": (422, "您管辖多个地区，请选择要查看的地区"),
    "STATS_ROLLUPS_MISSING": (503, "统计汇总尚未建立，请联系运维人员运行 flask --app wsgi stats rollups rebuild 后再试"),
})
