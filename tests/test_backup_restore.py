"""Issue 13 item 6: backups that restore. scripts/backup.py is run as an operator runs it (a
subprocess with the service's environment) against a seeded PostgreSQL database of its own: the
drill passes end to end, and a backup restored by hand into a new database and photo directory
serves the same public badge and the same photo bytes, read by a separate app process."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "backup.py"
BASE_URL = os.environ.get("DATABASE_URL", "")
postgres_only = pytest.mark.skipif(
    not BASE_URL.startswith("postgresql"),
    reason="备份与恢复演练用 pg_dump/pg_restore：只在 DATABASE_URL 为 PostgreSQL 时运行")


def run(args: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A migrated database (its own schema) holding the demo world — markets, stalls, a verified
    licence and permit with photos, pledges — and its photos in a local UPLOAD_DIR."""
    from tests.conftest import drop_postgres_schema, postgres_schema_url

    home = tmp_path_factory.mktemp("backup-world")
    schema = f"backup_{os.getpid()}"
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "STORAGE_URL")}
    env.update(DATABASE_URL=postgres_schema_url(BASE_URL, schema), INSTANCE_DIR=str(home / "instance"),
               UPLOAD_DIR=str(home / "uploads"), BACKUP_DIR=str(home / "backups"), BADGE_CACHE="off")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    run([*flask, "db", "upgrade"], env)
    run([*flask, "seed", "demo"], env)
    yield env, home
    drop_postgres_schema(BASE_URL, schema)


def served(env: dict) -> dict:
    """What an app process on `env` serves: every stall's public badge (without the moment it
    was computed) and the bytes of every photo the badges link to."""
    code = """
import hashlib, json, sys
from sqlalchemy import text
from app import create_app
from app.extensions import db
app = create_app()
with app.app_context():
    tokens = sorted(db.session.execute(text("SELECT token FROM stalls")).scalars())
client, out = app.test_client(), {}
for token in tokens:
    body = client.get(f"/api/v1/public/stalls/{token}").get_json()
    body.pop("computed_at", None)
    photos = {}
    for item in body.get("items", []):
        for document in item.get("documents") or []:
            if document.get("photo_url"):
                image = client.get(document["photo_url"].removeprefix(app.config["PUBLIC_BASE_URL"]))
                assert image.status_code == 200, image.status_code
                photos[document["photo_url"]] = hashlib.sha256(image.data).hexdigest()
    out[token] = {"badge": body, "photos": photos}
json.dump(out, sys.stdout, ensure_ascii=False)
"""
    return json.loads(run([sys.executable, "-c", code], env).stdout)


@postgres_only
def test_the_drill_passes_end_to_end(world):
    env, _ = world
    done = run([sys.executable, str(SCRIPT), "drill"], env)
    assert "演练通过" in done.stdout, done.stdout
    assert "张照片逐字节相同" in done.stdout and " 0 张照片" not in done.stdout
    assert "删除临时数据库" in done.stdout
    from sqlalchemy import create_engine, text

    engine = create_engine(BASE_URL)
    with engine.connect() as connection:  # the scratch database is gone
        left = connection.execute(text("SELECT count(*) FROM pg_database WHERE datname LIKE 'xgz_drill_%'")).scalar()
    engine.dispose()
    assert left == 0


@postgres_only
def test_a_backup_restored_into_a_new_database_serves_the_same_badges_and_photos(world):
    from sqlalchemy.engine import make_url

    env, home = world
    before = served(env)
    assert any(stall["photos"] for stall in before.values())  # the world has photos to compare
    done = run([sys.executable, str(SCRIPT), "backup"], env)
    assert "备份完成" in done.stdout
    [backup] = [p for p in (home / "backups").iterdir() if (p / "manifest.json").exists()]
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["database"]["schema"] == env["DATABASE_URL"].rsplit("%3D", 1)[1]
    assert manifest["photos"]["files"] >= 2

    new_db = f"xgz_restore_test_{os.getpid()}"
    restored_url = make_url(env["DATABASE_URL"]).set(database=new_db).render_as_string(hide_password=False)
    restored = {**env, "DATABASE_URL": restored_url, "UPLOAD_DIR": str(home / "restored-uploads")}
    try:
        done = run([sys.executable, str(SCRIPT), "restore", str(backup), "--create"], restored)
        assert "已是最新，无需迁移" in done.stdout and "恢复完成" in done.stdout
        assert served(restored) == before
        # A second restore into the now filled database is refused, not merged.
        again = subprocess.run([sys.executable, str(SCRIPT), "restore", str(backup)], env=restored, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "目标数据库不是空的" in again.stderr
    finally:
        subprocess.run(["dropdb", "--if-exists", "--force",
                        f"--maintenance-db={make_url(BASE_URL).set(drivername='postgresql', database='postgres')}",
                        new_db], capture_output=True)


def test_retention_keeps_n_days_and_always_the_newest(tmp_path):
    from scripts import backup as script

    now = time.time()

    def made(name: str, days_ago: float, complete: bool = True) -> Path:
        path = tmp_path / name
        path.mkdir()
        if complete:
            (path / "manifest.json").write_text("{}")
        os.utime(path, (now - days_ago * 86400,) * 2)
        return path

    old, kept = made("xgz-20260101-023000", 20), made("xgz-20260115-023000", 3)
    cut_short = made("xgz-20260110-023000.partial", 2, complete=False)
    running = made("xgz-20260118-023000.partial", 0, complete=False)
    other = made("not-a-backup", 30, complete=False)
    removed = script.prune(tmp_path, keep_days=14, now=now)
    assert set(removed) == {old, cut_short}
    assert kept.exists() and running.exists() and other.exists()
    # The newest backup stays however old it is: an old backup beats none.
    os.utime(kept, (now - 40 * 86400,) * 2)
    assert script.prune(tmp_path, keep_days=14, now=now) == [] and kept.exists()
    assert script.prune(tmp_path, keep_days=0, now=now) == []
