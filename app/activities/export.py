"""The attendance sheet as xlsx (签到表): names shown, phones masked."""
from __future__ import annotations

import io

from app.core.time import to_local

COLUMNS = ("序号", "姓名", "手机号", "状态", "签到时间", "签到方式", "位置存疑", "请假事由")
METHOD_LABELS = {"rotating_qr": "扫码签到", "manual": "手工补签"}


def attendance_xlsx(sheet: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    ws = workbook.active
    ws.title = "签到表"
    counts = sheet["counts"]
    ws.append([sheet["title"]])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([f"应到 {counts['expected']} 人，按时 {counts['present']} 人，迟到 {counts['late']} 人，"
               f"请假 {counts['on_leave']} 人，缺席 {counts['absent']} 人"])
    ws.append(list(COLUMNS))
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for number, row in enumerate(sheet["rows"], start=1):
        checked_in = row["checked_in_at"]
        ws.append([
            number, row["name"], row["phone"] or "", row["state_label"],
            to_local(checked_in).strftime("%Y-%m-%d %H:%M:%S") if checked_in else "",
            METHOD_LABELS.get(row["method"], "") if row["method"] else "",
            "是" if row["location_flagged"] else "",
            row["leave_reason"] or "" if row["state"] == "on_leave" else "",
        ])
    for letter, width in zip("ABCDEFGH", (6, 14, 16, 10, 20, 12, 10, 30)):
        ws.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
