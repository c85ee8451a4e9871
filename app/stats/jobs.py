"""The coverage table of a large region as a background job: a province's 20,000 market rows
are a workbook no request should be drawing."""
from __future__ import annotations

from app.core.errors import register_codes
from app.jobs.registry import job_kind
from app.jobs.services import refuse_direct_if_large, submit

OVERVIEW_EXPORT = "overview_export"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Market rows the direct GET /stats/overview.xlsx still writes inside the request (a city).
DIRECT_EXPORT_MAX_MARKETS = 2000

register_codes({
    "STATS_EXPORT_USE_JOB": (409, "本地区市场较多，统计表需要较长时间生成，请使用“后台导出”，完成后再下载"),
})


def refuse_direct_export_if_large(actor, region_code: str | None) -> None:
    from app.stats.services import overview

    markets = overview(actor, region_code, per_page=1)["markets_page"]["total"]
    refuse_direct_if_large(markets, DIRECT_EXPORT_MAX_MARKETS, "STATS_EXPORT_USE_JOB",
                           "/api/v1/stats/overview-exports", "markets")


def submit_overview_export(actor, region_code: str | None):
    """Queue the region's coverage workbook (the same scope check as the overview)."""
    from app.stats.services import resolve_region

    region = resolve_region(actor, region_code)
    return submit(actor, OVERVIEW_EXPORT, {"region": region["code"]}, scope=("region", region["code"]), total=2,
                  message=f"排队中：{region['name']}覆盖情况统计表")


def _may_read(user, job) -> None:
    """The owner still regulates the region (a revoked regulator no longer downloads it)."""
    from app.stats.services import resolve_region

    resolve_region(user, job.params["region"])


@job_kind(OVERVIEW_EXPORT, title="覆盖情况统计表", may_read=_may_read, timeout_seconds=1800)
def overview_export(ctx, region: str) -> None:
    from app.stats.export import overview_filename, overview_xlsx
    from app.stats.services import overview

    ctx.progress(0, 2, "正在统计")
    data = overview(ctx.owner(), region, per_page=None)
    ctx.progress(1, 2, f"正在写入 {len(data['markets'])} 个市场")
    ctx.save_result(overview_xlsx(data), overview_filename(data), XLSX, "xlsx")
    ctx.progress(2, 2, "已完成")
