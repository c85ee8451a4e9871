"""The attendance sheet as xlsx (签到表), a 三会一课 record: what, when, where and who organised
it above the table; names shown, phones masked; times as real date cells."""
from __future__ import annotations

from app.core.time import to_local
from app.core.xlsx import Sheet

COLUMNS = (("序号", 6), ("姓名", 14), ("手机号", 16), ("状态", 10), ("签到时间", 18), ("签到方式", 12),
           ("位置存疑", 10), ("请假事由", 30))
METHOD_LABELS = {"rotating_qr": "扫码签到", "manual": "手工补签"}


def attendance_heading(activity, org_name: str, counts: dict) -> list[str]:
    starts, ends = to_local(activity.starts_at), to_local(activity.ends_at)
    return [
        f"{activity.title}（签到表）",
        f"活动类型：{activity.type}    组织：{org_name}",
        f"时间：{starts:%Y-%m-%d %H:%M} 至 {ends:%H:%M}    地点：{activity.place_name or '未填写'}",
        f"应到 {counts['expected']} 人，按时 {counts['present']} 人，迟到 {counts['late']} 人，"
        f"请假 {counts['on_leave']} 人，缺席 {counts['absent']} 人",
    ]


def attendance_xlsx(activity, org_name: str, sheet: dict) -> bytes:
    table = Sheet("签到表", COLUMNS, heading=attendance_heading(activity, org_name, sheet["counts"]))
    for number, row in enumerate(sheet["rows"], start=1):
        table.add([
            number, row["name"], row["phone"], row["state_label"], row["checked_in_at"],
            METHOD_LABELS.get(row["method"]) if row["method"] else None,
            "是" if row["location_flagged"] else None,
            row["leave_reason"] if row["state"] == "on_leave" else None,
        ])
    return table.to_bytes()


def attendance_filename(activity) -> str:
    return f"签到表-{activity.title}-{to_local(activity.starts_at):%Y%m%d}.xlsx"
