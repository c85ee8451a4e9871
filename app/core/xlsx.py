"""The one xlsx writer every export uses: a heading block, a bold frozen header row with
filters, column widths, real date cells, and text that is always text.

Text is written as a string cell with Excel's quote prefix, whatever it starts with: a leave
reason of `=HYPERLINK(...)` or `+1-2` is shown as typed and is never evaluated, not even after
someone edits the cell (formula injection, CWE-1236). Nothing else in the project builds a
Workbook by hand."""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from app.core.time import to_local

DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"


class Sheet:
    def __init__(self, title: str, columns: Sequence[tuple[str, int]],
                 heading: Iterable[str] = (), worksheet=None) -> None:
        """`columns`: (header, width in characters); `heading`: lines above the table (the
        sheet's title first, in bold). A new workbook, unless `worksheet` (see `on`)."""
        if worksheet is None:
            self.book = Workbook()
            self.ws = self.book.active
            self.ws.title = title[:31]  # Excel's limit for a sheet name
        else:
            self.book, self.ws = worksheet.parent, worksheet
        self.width = len(columns)
        for index, line in enumerate(heading):
            cell = self.ws.cell(row=index + 1, column=1)
            _set_text(cell, line)
            if index == 0:
                cell.font = Font(bold=True, size=14)
        self.header_row = self.ws.max_row + 1 if heading else 1
        for column, (name, width) in enumerate(columns, start=1):
            cell = self.ws.cell(row=self.header_row, column=column)
            _set_text(cell, name)
            cell.font = Font(bold=True)
            self.ws.column_dimensions[get_column_letter(column)].width = width
        self.ws.freeze_panes = self.ws.cell(row=self.header_row + 1, column=1)
        self.rows = 0

    def add(self, values: Sequence) -> None:
        row = self.header_row + 1 + self.rows
        for column, value in enumerate(values, start=1):
            _write(self.ws.cell(row=row, column=column), value)
        self.rows += 1

    @classmethod
    def on(cls, worksheet, columns: Sequence[tuple[str, int]], heading: Iterable[str] = ()) -> "Sheet":
        """A second table in the same workbook, on `worksheet` (book.create_sheet(title))."""
        return cls(worksheet.title, columns, heading, worksheet=worksheet)

    def finish(self) -> None:
        """The header's filter over the rows written (to_bytes does it for the first table)."""
        last = self.header_row + max(self.rows, 1)
        self.ws.auto_filter.ref = f"A{self.header_row}:{get_column_letter(self.width)}{last}"

    def to_bytes(self) -> bytes:
        self.finish()
        buffer = io.BytesIO()
        self.book.save(buffer)
        return buffer.getvalue()


def _set_text(cell, text: str) -> None:
    cell.value = text
    cell.data_type = "s"  # never "f": openpyxl would store a leading "=" as a formula
    cell.quotePrefix = True


def _write(cell, value) -> None:
    if value is None:
        return
    if isinstance(value, str):
        _set_text(cell, value)
    elif isinstance(value, datetime):
        # Stored naive UTC; the sheet shows Asia/Shanghai wall time (Excel has no time zones).
        cell.value = to_local(value).replace(tzinfo=None)
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, date):
        cell.value = value
        cell.number_format = DATE_FORMAT
    elif isinstance(value, (bool, int, float)):
        cell.value = value
    else:
        _set_text(cell, str(value))
