"""Error codes of integrity pledges (诚信经营承诺)."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "PLEDGE_TEMPLATE_NOT_FOUND": (404, "承诺书模板不存在"),
    "PLEDGE_TEMPLATE_INACTIVE": (409, "该承诺书模板已停用或已有新版本，请刷新后重新选择"),
    "PLEDGE_TEMPLATE_SUPERSEDED": (409, "该模板已有新版本，请在最新版本上修改"),
    "PLEDGE_TEMPLATE_NOT_APPLICABLE": (422, "该承诺书模板不适用于所选市场所在地区"),
    "PLEDGE_NOT_FOUND": (404, "诚信经营承诺不存在"),
    "PLEDGE_NOT_OWNER": (403, "只能为本人名下的经营主体签署或查看承诺"),
    "PLEDGE_ALREADY_ACTIVE": (409, "该经营主体已有审核中、生效中或待生效的诚信经营承诺，无需重复签署；"
                                   "生效中的承诺可在到期前 30 天内续签"),
    "PLEDGE_NO_STALL": (409, "请先认领摊位（经市场管理方确认后），再签署诚信经营承诺"),
    "PLEDGE_MARKET_REQUIRED": (422, "您在多个市场有摊位，请选择由哪个市场审核这份承诺"),
    "PLEDGE_MARKET_NOT_HELD": (422, "您在所选市场没有已认领的摊位，请重新选择"),
    "PLEDGE_NOT_PENDING": (409, "该承诺不在待审核状态，不能再审核"),
    "PLEDGE_NOT_IN_FORCE": (409, "该承诺当前未生效（待审核、已驳回、已撤销或已到期），不能撤销"),
})

register_path_objects({'pledge_id': 'PLEDGE_NOT_FOUND', 'template_id': 'PLEDGE_TEMPLATE_NOT_FOUND'}, not_visible=('PLEDGE_NOT_OWNER',))
