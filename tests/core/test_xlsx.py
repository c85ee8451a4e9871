"""Issue 9 item 6: one xlsx writer for every export, text always text (no formula injection)."""
import io
from datetime import date, datetime
from pathlib import Path

from openpyxl import load_workbook

from app.core.xlsx import Sheet

APP = Path(__file__).resolve().parents[2] / "app"
INJECTIONS = ['=HYPERLINK("http://evil.example","点我")', "+1-2", "-2+3", "@SUM(A1)", "\t=1",
              "=cmd|' /C calc'!A0"]


def test_text_that_looks_like_a_formula_is_stored_as_text():
    sheet = Sheet("测试", [("内容", 20), ("时间", 18), ("日期", 12), ("数", 6)], heading=["=标题"])
    for text in INJECTIONS:
        sheet.add([text, datetime(2026, 3, 1, 1, 0), date(2026, 3, 2), 3])
    ws = load_workbook(io.BytesIO(sheet.to_bytes())).active
    assert ws["A1"].value == "=标题" and ws["A1"].data_type == "s"
    cells = [ws.cell(row=3 + i, column=1) for i in range(len(INJECTIONS))]
    assert [c.value for c in cells] == INJECTIONS
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    # Dates are date cells, shown in Asia/Shanghai; numbers stay numbers.
    assert ws.cell(row=3, column=2).value == datetime(2026, 3, 1, 9, 0)
    assert ws.cell(row=3, column=3).value == datetime(2026, 3, 2)
    assert ws.cell(row=3, column=4).value == 3
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == f"A2:D{2 + len(INJECTIONS)}"


def test_no_export_builds_a_workbook_by_hand():
    offenders = [str(path.relative_to(APP)) for path in APP.rglob("*.py")
                 if path.name != "xlsx.py" and "Workbook(" in path.read_text(encoding="utf-8")]
    assert offenders == []
