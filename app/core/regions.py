"""Administrative regions (GB/T 2260 行政区划代码) and the prefix rule that makes scopes
hierarchical: 450400 (梧州市) covers 450403 (万秀区) but not 430281 (醴陵市)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, TextIO

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import insert_ignore
from app.core.safejson import has_bad_text
from app.extensions import db


NAME_MAX = 64


class Region(db.Model):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    level: Mapped[int] = mapped_column(nullable=False)  # 1 province, 2 city, 3 county


def code_prefix(code: str) -> str:
    """Significant prefix of a code: 450000 -> 45, 450400 -> 4504, 450403 -> 450403."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def codes_under(column, code: str):
    """SQL: `column` (a 6-digit region code) lies in the region `code` ("000000": anywhere). A
    range rather than LIKE 'prefix%': a B-tree index serves it under any collation (LIKE needs
    the C collation or text_pattern_ops for that)."""
    if code == "000000":
        return column.isnot(None)
    prefix = code_prefix(code)
    return column.between(prefix.ljust(6, "0"), prefix.ljust(6, "9"))


def region_covers(scope_code: str, code: str | None) -> bool:
    return bool(code) and code.startswith(code_prefix(scope_code))


def region_level(code: str) -> int:
    return {2: 1, 4: 2}.get(len(code_prefix(code)), 3)


def parent_of(code: str) -> str | None:
    level = region_level(code)
    if level == 1:
        return None
    if level == 2:
        return code[:2] + "0000"
    # County under a city; for municipalities' districts the city row (e.g. 110100) may be absent,
    # in which case the caller falls back to the province.
    return code[:4] + "00"


def is_valid_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit() and code != "000000"


def builtin_regions() -> list[tuple[str, str]]:
    with BUILTIN_TABLE.open(encoding="utf-8") as stream:
        return read_gbt2260_csv(stream)


def upsert_regions(rows: Iterable[tuple[str, str]]) -> int:
    """Insert (code, name) pairs, parents first; existing codes are left alone. Returns rows added."""
    ordered = sorted({code: name for code, name in rows}.items(), key=lambda kv: region_level(kv[0]))
    known = set(db.session.scalars(select(Region.code)))
    values = []
    for code, name in ordered:
        parent = parent_of(code)
        if parent and parent not in known:
            parent = code[:2] + "0000" if code[:2] + "0000" in known else None
        values.append({"code": code, "name": name, "parent_code": parent, "level": region_level(code)})
        known.add(code)
    added = 0
    for start in range(0, len(values), 1000):
        added += insert_ignore(Region, values[start:start + 1000], ["code"])
    return added


# The national table that ships with the product (source and licence beside it).
BUILTIN_TABLE = Path(__file__).resolve().parent / "data" / "gbt2260_regions.csv"


def read_gbt2260_csv(stream: TextIO) -> list[tuple[str, str]]:
    """Rows of `code,name` (a header row and `#` comment lines are skipped); bad codes are
    reported, not guessed."""
    rows, bad = [], []
    header_seen = False
    for lineno, row in enumerate(csv.reader(stream), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        code, name = row[0].strip(), (row[1].strip() if len(row) > 1 else "")
        if not header_seen and not code.isdigit():
            header_seen = True
            continue
        header_seen = True
        if not is_valid_code(code) or not name or len(name) > NAME_MAX or has_bad_text(name):
            bad.append(lineno)  # found here, not by the database halfway through an import
            continue
        rows.append((code, name))
    if bad:
        raise ValueError(f"第 {', '.join(map(str, bad[:10]))} 行的行政区划代码或名称不合法")
    return rows


DEMO_REGIONS = [
    ("450000", "广西壮族自治区"), ("450400", "梧州市"), ("450403", "万秀区"), ("450405", "长洲区"),
    ("430000", "湖南省"), ("430200", "株洲市"), ("430281", "醴陵市"),
    ("330000", "浙江省"), ("331000", "台州市"), ("331081", "温岭市"),
]
