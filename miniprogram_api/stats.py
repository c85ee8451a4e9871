"""Coverage figures for regulators (覆盖情况统计)."""
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.stats import export, services
from app.stats import jobs as stats_jobs
from app.stats.trend import MAX_MONTHS, trend as trend_of
from miniprogram_api.jobs import JobSchema, accepted
from miniprogram_api.reports import FiguresSchema
from miniprogram_api.common import REGION_CODE, BEARER, Blueprint, Int, LocalDateTime, xlsx_doc, xlsx_download

blp = Blueprint("stats", __name__, description="统计")


def count(description: str) -> fields.Integer:
    return Int(required=True, metadata={"description": description})


class TotalsSchema(Schema):
    markets = count("专业市场数")
    stalls = count("摊位数")
    stalls_claimed = count("已认领（已确认经营主体）的摊位数")
    merchants = count("持有摊位的经营主体数（去重）")
    licences_shown = count("亮照：营业执照已核验且在有效期内的摊位数")
    permits_shown = count("亮证：已核验且在有效期内的许可证数")
    pledges_in_force = count("生效中的诚信经营承诺")
    pledges_pending = count("待审核的承诺")
    pledges_rejected = count("已驳回的承诺")
    pledges_revoked = count("已撤销的承诺")
    pledges_expired = count("已到期的承诺")
    merchants_with_pledge_in_force = count("有生效承诺的经营主体数（去重），即“参与诚信经营承诺”的户数")
    party_households = count("党员经营户：经营者为已认定党员的摊位数")
    pledge_rate = fields.Float(allow_none=True, metadata={
        "description": "承诺率：有生效承诺的经营主体 / 持有摊位的经营主体（0–1；无经营主体时为 null）"})


class PartyFiguresSchema(Schema):
    orgs = count("党组织数")
    orgs_by_kind = fields.Dict(keys=fields.String(), values=Int(), required=True, metadata={
        "description": "按类型：committee 党委 / general_branch 党总支 / branch 党支部 / joint_branch 联合党支部"})
    members_verified = count("已认定的党员")
    members_floating = count("其中流动党员")
    rider_stations = count("骑手站点（快递外卖骑手党组织）")
    riders = count("站点骑手（去重）")
    care_stations = count("开放中的暖心驿站")
    activities_this_month = count("本月已开展的组织生活（北京时间自然月，未取消、已开始）")
    attendance_expected = count("本月活动应到人次（组织的已认定党员，或站点全体骑手）")
    attendance_present = count("本月活动实到人次（签到）")
    attendance_rate = fields.Float(allow_none=True, metadata={"description": "参加率 = 实到 / 应到（0–1；无活动时为 null）"})


class PartyBuildingSchema(Schema):
    totals = fields.Nested(PartyFiguresSchema, required=True, metadata={"description": "所选地区合计"})
    children = fields.Dict(keys=fields.String(), values=fields.Nested(PartyFiguresSchema), required=True,
                           metadata={"description": "各下一级行政区划（按代码）"})
    direct = fields.Nested(PartyFiguresSchema, required=True, metadata={"description": "登记在所选地区本级的组织"})


class SectionsSchema(Schema):
    party_building = fields.Nested(PartyBuildingSchema, required=True, metadata={
        "description": "党建：党组织、党员（含流动党员）、骑手站点与骑手、暖心驿站、本月活动与参加率"})
    rider_reports = fields.Nested(FiguresSchema, required=True, metadata={
        "description": "骑手随手拍：按状态、类别、地区、月份的件数，超期件数，属实率与办结用时（同 GET /reports/stats）"})


class RegionRowSchema(Schema):
    code = fields.String(required=True, metadata={"description": "行政区划代码；000000 表示全国"})
    name = fields.String(required=True)
    level = Int(required=True, metadata={"description": "0 全国，1 省，2 地市，3 区县"})
    totals = fields.Nested(TotalsSchema, required=True)


class MarketRowSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    region_code = fields.String(required=True)
    totals = fields.Nested(TotalsSchema, required=True)


class MarketsPageSchema(Schema):
    page = Int(required=True)
    per_page = Int(required=True)
    total = Int(required=True, metadata={"description": "地区内市场总数（各页合计）"})


class OverviewSchema(Schema):
    region = fields.Nested(RegionRowSchema, required=True, metadata={"description": "所选地区合计"})
    children = fields.List(fields.Nested(RegionRowSchema), required=True,
                           metadata={"description": "下一级行政区划各自的合计（区县级地区为空）"})
    direct = fields.Nested(TotalsSchema, required=True, metadata={
        "description": "直接登记在所选地区本级（不属于任何下级地区）的市场合计；"
                       "可加字段满足：地区合计 = 各下级合计 + direct = 各市场之和"})
    markets = fields.List(fields.Nested(MarketRowSchema), required=True,
                          metadata={"description": "地区内每个市场一行，按行政区划、名称排序；分页（见 markets_page），"
                                                   "地区合计与下级合计覆盖全部市场，不只本页"})
    markets_page = fields.Nested(MarketsPageSchema, required=True)
    sections = fields.Nested(SectionsSchema, required=True)
    generated_at = LocalDateTime(required=True, metadata={
        "description": "统计时点：全部数字在此刻准确（由增量汇总得出，证照、承诺按此刻是否有效计算）"})


class OverviewQuerySchema(Schema):
    region = fields.String(load_default=None, validate=REGION_CODE, metadata={
        "description": "行政区划代码，须在本人管辖范围内；缺省为本人管辖地区；000000 为全国（系统管理员）",
        "example": "450400"})


class OverviewPageQuerySchema(OverviewQuerySchema):
    page = Int(load_default=1, validate=validate.Range(min=1, max=100000), metadata={"description": "市场列表页码，从 1 开始"})
    per_page = Int(load_default=services.MARKETS_PER_PAGE,
                   validate=validate.Range(min=1, max=services.MAX_MARKETS_PER_PAGE),
                   metadata={"description": f"每页市场数，最多 {services.MAX_MARKETS_PER_PAGE}"})


@blp.route("/stats/overview", methods=["GET"])
@blp.arguments(OverviewPageQuerySchema, location="query")
@blp.response(200, OverviewSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def overview(args):
    """辖区覆盖情况：市场、摊位认领、亮照亮证、诚信经营承诺（按市场与下级地区汇总）"""
    return services.overview(current_user(), args["region"], page=args["page"], per_page=args["per_page"])


@blp.route("/stats/overview.xlsx", methods=["GET"])
@blp.arguments(OverviewQuerySchema, location="query")
@blp.doc(security=BEARER, responses={"200": xlsx_doc("覆盖情况统计表（Excel）：合计、下级地区、各市场；党建分表")})
@requires("regulator")
def overview_xlsx(args):
    """导出辖区覆盖情况统计表（与 /stats/overview 相同的数字）"""
    stats_jobs.refuse_direct_export_if_large(current_user(), args["region"])  # a province: the job
    data = services.overview(current_user(), args["region"], per_page=None)
    return xlsx_download(export.overview_xlsx(data), export.overview_filename(data))


@blp.route("/stats/overview-exports", methods=["POST"])
@blp.arguments(OverviewQuerySchema, location="query")
@blp.response(202, JobSchema, description="已排队；按 Location（GET /api/v1/jobs/{id}）轮询进度，完成后下载")
@blp.doc(security=BEARER)
@requires("regulator")
def overview_export_job(args):
    """后台导出辖区覆盖情况统计表（市场多的地区用这个；与 /stats/overview.xlsx 相同的表）"""
    return accepted(stats_jobs.submit_overview_export(current_user(), args["region"]))


class TrendQuerySchema(OverviewQuerySchema):
    months = Int(load_default=12, validate=validate.Range(min=1, max=MAX_MONTHS),
                 metadata={"description": f"最近几个月（含本月），1–{MAX_MONTHS}"})


class MonthSchema(Schema):
    month = fields.String(required=True, metadata={"example": "2026-06"})
    at = LocalDateTime(required=True, metadata={"description": "统计时点：月末（本月为当前时间）"})
    stalls_claimed = count("已认领（经营关系存续）的摊位")
    licences_shown = count("亮照摊位（营业执照已核验且当日有效）")
    pledges_in_force = count("生效中的诚信经营承诺")
    party_households = count("党员经营户")
    activities = count("当月开展的组织生活")
    attendance_rate = fields.Float(allow_none=True, metadata={"description": "当月活动参加率（0–1）"})


class TrendSchema(Schema):
    region = fields.Dict(required=True, metadata={"description": "{code, name, level}"})
    months = fields.List(fields.Nested(MonthSchema), required=True, metadata={"description": "按月，旧的在前"})
    generated_at = LocalDateTime(required=True)


@blp.route("/stats/trend", methods=["GET"])
@blp.arguments(TrendQuerySchema, location="query")
@blp.response(200, TrendSchema)
@blp.doc(security=BEARER)
@requires("regulator")
def trend(args):
    """按月趋势：认领、亮照、诚信承诺、党员经营户、组织生活与参加率（北京时间自然月，各月取月末状态）"""
    return trend_of(current_user(), args["region"], args["months"])
