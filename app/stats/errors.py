"""Error codes of the coverage figures."""
from app.core.errors import register_codes

register_codes({
    "STATS_REGION_REQUIRED": (422, "您管辖多个地区，请选择要查看的地区"),
})
