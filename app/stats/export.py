"""GET /stats/overview.xlsx: the overview as a workbook a regulator hands up the chain: one
row for the region, one per child region, one per market (same figures as the JSON), and the
party-building figures per region."""
from __future__ import annotations

from typing import Any

from app.core.time import to_local
from app.core.xlsx import Sheet

# (field, header, width): the order a reader scans, the totals' names in Chinese.
COVERAGE_COLUMNS = (
    ("markets", "市场数", 8), ("stalls", "摊位数", 8), ("stalls_claimed", "已认领摊位", 10),
    ("merchants", "经营主体（去重）", 12), ("licences_shown", "亮照摊位", 9), ("permits_shown", "亮证数", 8),
    ("pledges_in_force", "生效承诺", 9), ("merchants_with_pledge_in_force", "承诺经营主体", 12),
    ("pledge_rate", "承诺率", 8), ("party_households", "党员经营户", 10), ("pledges_pending", "待审承诺", 9),
    ("pledges_expired", "到期承诺", 9), ("pledges_revoked", "撤销承诺", 9),
)
PARTY_COLUMNS = (
    ("orgs", "党组织", 8), ("members_verified", "党员（已认定）", 12), ("members_floating", "其中流动党员", 12),
    ("rider_stations", "骑手站点", 9), ("riders", "骑手", 8), ("care_stations", "暖心驿站", 9),
    ("activities_this_month", "本月活动", 9), ("attendance_rate", "本月参加率", 10),
)


def _row(kind: str, code: str, name: str, values: dict[str, Any], columns) -> list:
    return [kind, code, name, *(values.get(field) for field, _, _ in columns)]


def overview_xlsx(data: dict[str, Any]) -> bytes:
    region = data["region"]
    when = f"{to_local(data['generated_at']):%Y-%m-%d %H:%M}"
    heading = [f"{region['name']}覆盖情况统计", f"统计时间：{when}（北京时间）；承诺率 = 承诺经营主体 / 经营主体"]
    coverage = Sheet("覆盖情况", [("层级", 8), ("代码", 9), ("名称", 24), *((h, w) for _, h, w in COVERAGE_COLUMNS)],
                     heading=heading)
    coverage.add(_row("合计", region["code"], region["name"], region["totals"], COVERAGE_COLUMNS))
    for child in data["children"]:
        coverage.add(_row("下级地区", child["code"], child["name"], child["totals"], COVERAGE_COLUMNS))
    if data["direct"]["markets"]:
        coverage.add(_row("本级", region["code"], f"{region['name']}本级", data["direct"], COVERAGE_COLUMNS))
    for market in data["markets"]:
        coverage.add(_row("市场", market["region_code"], market["name"], market["totals"], COVERAGE_COLUMNS))

    party = data["sections"]["party_building"]
    names = {child["code"]: child["name"] for child in data["children"]}
    sheet = coverage.book.create_sheet("党建")
    party_table = Sheet.on(sheet, [("层级", 8), ("代码", 9), ("名称", 24), *((h, w) for _, h, w in PARTY_COLUMNS)],
                           heading=[f"{region['name']}党建工作统计", f"统计时间：{when}（北京时间）；本月 = 北京时间自然月"])
    party_table.add(_row("合计", region["code"], region["name"], party["totals"], PARTY_COLUMNS))
    for code, values in party["children"].items():
        party_table.add(_row("下级地区", code, names.get(code, code), values, PARTY_COLUMNS))
    party_table.finish()
    return coverage.to_bytes()


def overview_filename(data: dict[str, Any]) -> str:
    return f"覆盖情况-{data['region']['name']}-{to_local(data['generated_at']):%Y%m%d}.xlsx"
