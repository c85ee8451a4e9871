"""Issue 13 item 2: `flask doctor` says whether a configuration may serve; in production a fatal
finding is exit code 1 and gunicorn refuses to start; stickers are not printed for a loopback
or http address unless asked."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app.doctor import OK, WARN, examine, fatal, public_url_problem

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def migrated(app, db):
    """The test database is built with create_all: stamp it at head as `db upgrade` would."""
    from flask_migrate import stamp

    stamp()
    yield
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def test_an_unmigrated_database_is_fatal(app):
    [finding] = fatal(examine(app))
    assert finding.check == "数据库结构" and "db upgrade" in finding.message


def test_development_defaults_are_warnings_not_fatal(app, migrated):
    findings = {f.check: f for f in examine(app)}
    assert fatal(list(findings.values())) == []
    assert findings["数据库"].level == OK and findings["数据库结构"].level == OK
    assert findings["上传目录"].level == OK


def test_unbuilt_coverage_rollups_are_a_warning_that_names_the_command(app, migrated, make_market, db):
    from app.stats.models import MarketCoverage, RegionCoverage

    make_market()
    assert {f.check: f for f in examine(app)}["统计汇总"].level == OK
    db.session.execute(MarketCoverage.__table__.delete())
    db.session.execute(RegionCoverage.__table__.delete())
    db.session.commit()
    finding = {f.check: f for f in examine(app)}["统计汇总"]
    assert finding.level == WARN and "stats rollups rebuild" in finding.message


def test_production_with_laptop_settings_is_refused(app, migrated, monkeypatch):
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    monkeypatch.setitem(app.config, "SECRET_KEY_FROM_ENV", False)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    bad = {f.check for f in fatal(examine(app))}
    assert {"SECRET_KEY", "PUBLIC_BASE_URL", "微信接口"} <= bad
    monkeypatch.setitem(app.config, "SECRET_KEY_FROM_ENV", True)
    monkeypatch.setitem(app.config, "SECRET_KEY", "k" * 48)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://xgz.example.gov.cn")
    monkeypatch.setitem(app.config, "WECHAT_APPID", "wx1234567890abcdef")
    monkeypatch.setitem(app.config, "WECHAT_SECRET", "a-real-secret")
    monkeypatch.setitem(app.config, "WECHAT_API_BASE_URL", "https://api.weixin.qq.com/")
    monkeypatch.setitem(app.config, "UPLOAD_DIR", "/proc/not-writable")
    assert {f.check for f in fatal(examine(app))} == {"上传目录"}


def test_public_url_rules():
    assert public_url_problem("https://xgz.example.gov.cn") is None
    assert "本机" in public_url_problem("http://localhost:5000")
    assert "本机" in public_url_problem("https://0.0.0.0")
    assert "https" in public_url_problem("http://xgz.example.gov.cn")


def test_the_cli_exits_non_zero_on_a_fatal_finding(app, migrated, monkeypatch):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["doctor"]).exit_code == 0
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1 and "不能上线" in result.output and "PUBLIC_BASE_URL 指向本机" in result.output


def test_gunicorn_refuses_to_start_a_production_config_with_a_fatal_finding(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "APP_ENV": "production", "INSTANCE_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "PUBLIC_BASE_URL": "http://127.0.0.1:5000"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "-w", "1",
                             "-b", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "配置不能上线" in result.stderr and "PUBLIC_BASE_URL 指向本机" in result.stderr
