"""`make bench`: every speed bar of QUALITY.md, one script after another (they share the
machine's two cores, so never in parallel), on SQLite and, when a PostgreSQL server answers, on
PostgreSQL; then one table with both columns side by side. Exits non-zero when any bar is missed.

PostgreSQL: BENCH_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/xgz_bench).
The database is created if missing and its tables are dropped and re-created: never point it at
real data.

`--province` (`make bench-province` runs it alone) adds the province bench (P10, P12; ~45 min,
its own databases xgz_province*, see bench_province.py) to the PostgreSQL column."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/xgz_bench")

# (column, bars, module, extra arguments, extra environment)
SQLITE_RUNS = (
    ("P1 P2 P3 P5 P6 P8", "scripts.bench.bench_badge", [], {}),
    ("P7", "scripts.bench.bench_reminders", [], {}),
    ("P11", "scripts.bench.bench_market_page", [], {}),
)
POSTGRES_RUNS = (
    ("P1 P2 P3", "scripts.bench.bench_badge", ["--only", "P1,P2,P3"], {"DATABASE_URL": PG_URL}),
    ("P4 P9", "scripts.bench.bench_checkin", ["--database-url", PG_URL], {}),
    ("P7", "scripts.bench.bench_reminders", [], {"DATABASE_URL": PG_URL}),
    ("P11", "scripts.bench.bench_market_page", [], {"DATABASE_URL": PG_URL}),
)


def postgres_reachable() -> bool:
    try:
        from scripts.bench.bench_checkin import ensure_database

        ensure_database(PG_URL)
        return True
    except Exception as exc:  # no server, no permission: the column is skipped, with the reason
        print(f"\nPostgreSQL 不可达（{type(exc).__name__}）：跳过 PostgreSQL 列", flush=True)
        return False


def run(column: str, runs, results: Path) -> list[str]:
    failed = []
    for bars, module, args, env in runs:
        print(f"\n=== {column}: {bars}: python -m {module} {' '.join(args)} ===", flush=True)
        environment = {**os.environ, "BENCH_RESULTS": str(results), "BENCH_COLUMN": column, **env}
        if column == "sqlite":
            environment.pop("DATABASE_URL", None)
        if subprocess.run([sys.executable, "-m", module, *args], env=environment).returncode != 0:
            failed.append(f"{column} {bars}")
    return failed


def side_by_side(results: Path) -> None:
    rows: dict[tuple[str, str], dict] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        entry = rows.setdefault((row["bar"], row["what"]), {"goal": row["goal"]})
        entry[row["column"]] = ("" if row["ok"] else "✗ ") + row["measured"]
    if not rows:
        return
    table = [("bar", "what", "SQLite", "PostgreSQL", "goal")]
    table += [(bar, what, entry.get("sqlite", "—"), entry.get("postgresql", "—"), entry["goal"])
              for (bar, what), entry in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    print("\n== 速度指标：SQLite 与 PostgreSQL（✗ 为未达标）==")
    for r in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(r, widths)))


PROVINCE_RUN = ("P10 P12 (province)", "scripts.bench.bench_province", [], {})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", action="store_true", help="also seed and measure a province (~45 min)")
    args = parser.parse_args(argv)
    results = Path(tempfile.mkdtemp(prefix="xgz-bench-")) / "results.jsonl"
    failed = run("sqlite", SQLITE_RUNS, results)
    if postgres_reachable():
        failed += run("postgresql", POSTGRES_RUNS + ((PROVINCE_RUN,) if args.province else ()), results)
    if results.exists():
        side_by_side(results)
    print("\n未达标：" + "、".join(failed) if failed else "\n全部速度指标达标。")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
