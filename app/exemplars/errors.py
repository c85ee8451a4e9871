"""Error codes of 典型选树（示范）."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "EXEMPLAR_NOT_FOUND": (404, "示范称号记录不存在"),
    "EXEMPLAR_TARGET_NOT_FOUND": (404, "要授予称号的摊位或市场不存在"),
    "EXEMPLAR_CRITERIA_NOT_MET": (409, "该对象目前不符合示范评选条件"),
    "EXEMPLAR_ALREADY_CONFERRED": (409, "该对象已持有有效的示范称号，无需重复授予"),
    "EXEMPLAR_NOT_ACTIVE": (409, "该示范称号已撤销或已到期"),
    "EXEMPLAR_TITLE_INVALID": (422, "称号与对象类型不符：摊位可授予“示范摊位”或“党员示范户”，市场可授予“示范市场”"),
    "MARKET_PAGE_NOT_FOUND": (404, "市场公示页不存在"),
})

register_path_objects({"exemplar_id": "EXEMPLAR_NOT_FOUND"})
