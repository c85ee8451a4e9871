"""备份、恢复与恢复演练（issue 13 第 6 项）。在项目目录下、带着与 API 相同的环境变量运行：

    .venv/bin/python scripts/backup.py backup              # 备份到 BACKUP_DIR/xgz-<时间>/，并清理过期备份
    .venv/bin/python scripts/backup.py prune               # 只清理：删除 BACKUP_KEEP_DAYS 天以前的备份
    .venv/bin/python scripts/backup.py restore <备份目录>   # 恢复到 DATABASE_URL（须为空库）与照片存储
    .venv/bin/python scripts/backup.py drill               # 演练：备份 → 恢复到临时新库 → 比对 → 删除临时库

A backup is one directory: `database.dump` (pg_dump -Fc; `database.sqlite3` on SQLite), `photos/`
(written by `flask photos backup`, from UPLOAD_DIR or the S3 store of STORAGE_URL) and
`manifest.json` (time, migration revision, sizes, checksum). It is written under a `.partial`
name and renamed when complete, so a backup cut short is never taken for a good one.

Consistency: the dump is one snapshot (pg_dump runs in a single repeatable-read transaction).
Photos are copied after it: a photo is stored before the row naming it commits, and photos are
not deleted while referenced, so every photo the dump names is in the copy (the copy may hold a
few newer ones nobody references yet, which is harmless).

Not in a backup, on purpose: the secrets (SECRET_KEY, WECHAT_SECRET, the database password, the
S3 keys): they live in the service's environment file and are kept apart from the data.

Why Python rather than shell: the SQLAlchemy URL (postgresql+psycopg://…?options=-csearch_path=…)
must become libpq arguments, and the drill compares what two instances of the app serve; both
are a few lines here and fragile in sh. The PostgreSQL work itself is pg_dump, createdb,
pg_restore and dropdb, run as an operator would run them."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PREFIX = "xgz-"
PARTIAL = ".partial"
MANIFEST = "manifest.json"
PG_DUMP_FILE, SQLITE_FILE = "database.dump", "database.sqlite3"
STALLS_TO_COMPARE = 5


class Failed(Exception):
    """Stops the run with this (Chinese) message and exit code 1."""


def say(message: str) -> None:
    print(message, flush=True)


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def dir_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def settings():
    from config import Config

    return Config()


# -- the database ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Database:
    """DATABASE_URL as the app reads it, and what the pg tools need from it."""
    url: object  # sqlalchemy.engine.URL

    @classmethod
    def parse(cls, url: str) -> "Database":
        from sqlalchemy.engine import make_url

        return cls(make_url(url))

    @property
    def kind(self) -> str:
        backend = self.url.get_backend_name()
        if backend not in ("postgresql", "sqlite"):
            raise Failed(f"不支持的数据库类型：{backend}（只支持 PostgreSQL 与 SQLite）")
        return backend

    @property
    def name(self) -> str:
        return self.url.database or ""

    @property
    def schema(self) -> str | None:
        """The schema of `options=-csearch_path=<schema>` (how the tests give each run its own
        schema), or None for the usual whole database."""
        options = self.url.query.get("options") or ""
        options = " ".join(options) if isinstance(options, tuple) else options
        found = re.search(r"-c\s*search_path\s*=\s*([A-Za-z0-9_]+)", options)
        return found.group(1) if found else None

    def libpq(self, database: str | None = None) -> tuple[str, dict]:
        """A libpq URL (no password in it: argv is visible to every user of the machine) and
        the environment that carries the password."""
        url = self.url.set(drivername="postgresql", password=None)
        if database is not None:
            url = url.set(database=database)
        env = dict(os.environ)
        if self.url.password:
            env["PGPASSWORD"] = str(self.url.password)
        return url.render_as_string(hide_password=False), env

    def with_database(self, database: str) -> "Database":
        return Database(self.url.set(database=database))

    def sqlalchemy_url(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def shown(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def engine(self):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        return create_engine(self.sqlalchemy_url(), poolclass=NullPool)

    def revision(self) -> str | None:
        """The migration revision recorded in the database (None: no alembic_version)."""
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return None
        finally:
            engine.dispose()

    def table_count(self) -> int:
        from sqlalchemy import inspect

        engine = self.engine()
        try:
            return len(inspect(engine).get_table_names(schema=self.schema))
        finally:
            engine.dispose()


def run(command: list[str], env: dict | None = None, what: str = "") -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        raise Failed(f"找不到命令 {command[0]}：请安装 PostgreSQL 客户端工具（Debian/Ubuntu：apt-get install postgresql-client）")
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise Failed(f"{what or command[0]} 失败（退出码 {result.returncode}）：\n{detail}")
    return result


def dump_database(db: Database, target_dir: Path) -> Path:
    if db.kind == "sqlite":
        target = target_dir / SQLITE_FILE
        source = sqlite3.connect(f"file:{db.name}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # SQLite's online backup: one consistent copy while the app writes
        finally:
            copy.close()
            source.close()
        return target
    target = target_dir / PG_DUMP_FILE
    url, env = db.libpq()
    command = ["pg_dump", "--format=custom", f"--file={target}", f"--dbname={url}"]
    if db.schema:
        command.append(f"--schema={db.schema}")
    run(command, env, "pg_dump")
    return target


def restore_database(backup: Path, db: Database) -> None:
    """Into an empty database (or schema); refuses to write over data."""
    if db.kind == "sqlite":
        source = backup / SQLITE_FILE
        if not source.exists():
            raise Failed(f"{backup} 中没有 SQLite 数据库文件（{SQLITE_FILE}）：这份备份不是 SQLite 的")
        target = Path(db.name)
        if target.exists() and target.stat().st_size > 0:
            raise Failed(f"目标数据库文件已存在：{target}。恢复只写入新文件，请换一个路径或先移走它")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return
    source = backup / PG_DUMP_FILE
    if not source.exists():
        raise Failed(f"{backup} 中没有 PostgreSQL 备份文件（{PG_DUMP_FILE}）")
    if db.table_count():
        raise Failed(f"目标数据库不是空的（{db.shown()}）：恢复只写入空库。请新建一个数据库"
                     f"（加 --create）或换一个 DATABASE_URL")
    url, env = db.libpq()
    if db.schema:
        # The dump creates its schema itself; an empty one left by createdb or an operator is dropped first.
        from sqlalchemy import text

        engine = db.engine()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}"'))
        engine.dispose()
    run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={url}", str(source)],
        env, "pg_restore")


def create_database(db: Database) -> None:
    url, env = db.libpq(database="postgres")
    run(["createdb", f"--maintenance-db={url}", db.name], env, "createdb")


def drop_database(db: Database) -> None:
    url, env = db.libpq(database="postgres")
    run(["dropdb", "--if-exists", "--force", f"--maintenance-db={url}", db.name], env, "dropdb")


# -- the photos (flask photos backup/restore: the configured store, local or S3) ---------------
def flask_command(args: list[str], env: dict, what: str) -> str:
    return run([sys.executable, "-m", "flask", "--app", "wsgi", *args], env, what).stdout


def photos_commands_available(env: dict) -> bool:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "photos", "--help"], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    return result.returncode == 0 and "backup" in result.stdout


def backup_photos(target: Path, env: dict) -> str:
    if not photos_commands_available(env):
        raise Failed("照片备份命令（flask --app wsgi photos backup）不可用：请升级到包含它的版本，"
                     "或加 --no-photos 只备份数据库")
    return flask_command(["photos", "backup", str(target)], env, "flask photos backup")


def restore_photos(source: Path, env: dict) -> str:
    if not photos_commands_available(env):
        raise Failed("照片恢复命令（flask --app wsgi photos restore）不可用")
    return flask_command(["photos", "restore", str(source)], env, "flask photos restore")


# -- backup and retention ----------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_previous_photos(backup_root: Path, target: Path) -> None:
    """Start from hard links to the newest backup's photos: a photo is never rewritten under its
    key, so `flask photos backup` then copies only the new ones (it skips a file already there
    with the same size) and every backup stays complete while unchanged photos take no more
    space. A photo deleted from the store stays in later backups (harmless: nothing names it)."""
    previous = backups_in(backup_root)
    if not previous or not (previous[-1] / "photos").is_dir():
        return
    source = previous[-1] / "photos"
    try:
        for path in source.rglob("*"):
            if path.is_file():
                link = target / path.relative_to(source)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, link)
    except OSError:  # another file system, or no hard links there: copy them all afresh
        shutil.rmtree(target, ignore_errors=True)


def make_backup(db: Database, backup_root: Path, photos: bool, env: dict | None = None) -> tuple[Path, dict]:
    """One complete backup directory under backup_root; returns it and its manifest."""
    env = dict(env or os.environ)
    started = time.monotonic()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    final = backup_root / f"{PREFIX}{stamp}"
    if final.exists():
        final = backup_root / f"{PREFIX}{stamp}-{secrets.token_hex(2)}"
    work = final.with_name(final.name + PARTIAL)
    work.mkdir(parents=True)
    try:
        dump = dump_database(db, work)
        dumped = time.monotonic()
        manifest = {
            "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "database": {"kind": db.kind, "source": db.shown(), "schema": db.schema, "file": dump.name,
                         "bytes": dump.stat().st_size, "sha256": sha256_of(dump), "revision": db.revision(),
                         "seconds": round(dumped - started, 2)},
            "photos": None,
        }
        if photos:
            link_previous_photos(backup_root, work / "photos")
            say("  " + backup_photos(work / "photos", env).strip().replace("\n", "\n  "))
            files, size = dir_size(work / "photos")
            manifest["photos"] = {"dir": "photos", "files": files, "bytes": size,
                                  "seconds": round(time.monotonic() - dumped, 2)}
        manifest["seconds"] = round(time.monotonic() - started, 2)
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final, manifest


def backups_in(backup_root: Path) -> list[Path]:
    """Complete backups (a manifest, no .partial), oldest first."""
    if not backup_root.is_dir():
        return []
    found = [p for p in backup_root.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and not p.name.endswith(PARTIAL) and (p / MANIFEST).exists()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def prune(backup_root: Path, keep_days: int, now: float | None = None) -> list[Path]:
    """Delete complete backups older than keep_days (the newest is kept whatever its age: an old
    backup beats none) and leftovers of runs cut short (older than a day). 0 keeps everything."""
    if keep_days <= 0 or not backup_root.is_dir():
        return []
    now = now or time.time()
    cutoff = now - keep_days * 86400
    removed = [p for p in backups_in(backup_root)[:-1] if p.stat().st_mtime < cutoff]
    removed += [p for p in backup_root.iterdir()
                if p.is_dir() and p.name.startswith(PREFIX) and p.name.endswith(PARTIAL)
                and p.stat().st_mtime < now - 86400]
    for path in removed:
        shutil.rmtree(path)
    return removed


def describe(manifest: dict) -> list[str]:
    database = manifest["database"]
    lines = [f"  数据库：{database['source']}" + (f"（schema {database['schema']}）" if database["schema"] else ""),
             f"    {database['file']}，{human_size(database['bytes'])}，迁移版本 {database['revision'] or '无'}，"
             f"用时 {database['seconds']:.1f} 秒"]
    photos = manifest.get("photos")
    lines.append(f"  照片：{photos['files']} 个文件，{human_size(photos['bytes'])}，用时 {photos['seconds']:.1f} 秒"
                 if photos else "  照片：未备份（--no-photos）")
    return lines


def command_backup(args) -> None:
    config = settings()
    db = Database.parse(config.SQLALCHEMY_DATABASE_URI)
    root = Path(args.dir or config.BACKUP_DIR)
    say(f"开始备份到 {root}")
    path, manifest = make_backup(db, root, photos=not args.no_photos)
    say(f"备份完成：{path}（共用时 {manifest['seconds']:.1f} 秒）")
    for line in describe(manifest):
        say(line)
    say("  注意：密钥（SECRET_KEY、WECHAT_SECRET、数据库密码、对象存储密钥）不在备份中，请另行保管")
    removed = prune(root, config.BACKUP_KEEP_DAYS)
    say(f"按保留期 {config.BACKUP_KEEP_DAYS} 天删除了 {len(removed)} 份旧备份" +
        (f"：{', '.join(p.name for p in removed)}" if removed else ""))


def command_prune(args) -> None:
    config = settings()
    root = Path(args.dir or config.BACKUP_DIR)
    keep = config.BACKUP_KEEP_DAYS
    removed = prune(root, keep)
    say(f"保留期 {keep} 天：删除了 {len(removed)} 份旧备份，剩余 {len(backups_in(root))} 份（{root}）")
    for path in removed:
        say(f"  已删除 {path.name}")


# -- restore -----------------------------------------------------------------------------------
def check_backup(backup: Path) -> dict:
    manifest_path = backup / MANIFEST
    if not manifest_path.exists():
        raise Failed(f"{backup} 不是一份完整的备份（没有 {MANIFEST}；名字以 {PARTIAL} 结尾的是中断的备份）")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    dump = backup / manifest["database"]["file"]
    if not dump.exists() or sha256_of(dump) != manifest["database"]["sha256"]:
        raise Failed(f"备份文件 {dump} 缺失或校验和不符：这份备份已损坏，请换一份")
    return manifest


def upgrade(db: Database, env: dict) -> tuple[str | None, str | None]:
    """`flask db upgrade` against db; the revisions before and after."""
    before = db.revision()
    flask_command(["db", "upgrade"], {**env, "DATABASE_URL": db.sqlalchemy_url()}, "flask db upgrade")
    return before, db.revision()


def restore(backup: Path, db: Database, photos: bool, env: dict, create: bool = False) -> dict:
    """Database, then migrations, then photos; returns the timings."""
    manifest = check_backup(backup)
    if manifest["database"]["kind"] != db.kind:
        raise Failed(f"备份是 {manifest['database']['kind']} 的，目标是 {db.kind}：不能直接恢复")
    timings = {}
    started = time.monotonic()
    if create:
        create_database(db)
    restore_database(backup, db)
    timings["database"] = time.monotonic() - started
    mark = time.monotonic()
    timings["revision"] = upgrade(db, env)
    timings["upgrade"] = time.monotonic() - mark
    if photos:
        if not manifest.get("photos"):
            raise Failed("这份备份不含照片（备份时用了 --no-photos）：请加 --no-photos 只恢复数据库")
        mark = time.monotonic()
        timings["photos_output"] = restore_photos(backup / manifest["photos"]["dir"], env)
        timings["photos"] = time.monotonic() - mark
    return timings


def command_restore(args) -> None:
    config = settings()
    backup = Path(args.backup)
    db = Database.parse(args.database_url or config.SQLALCHEMY_DATABASE_URI)
    if args.create and db.kind != "postgresql":
        raise Failed("--create 只用于 PostgreSQL（SQLite 恢复时直接写入新文件）")
    say(f"从 {backup} 恢复到 {db.shown()}" + ("（先新建该数据库）" if args.create else ""))
    timings = restore(backup, db, photos=not args.no_photos, env=dict(os.environ), create=args.create)
    before, after = timings["revision"]
    say(f"  数据库已恢复，用时 {timings['database']:.1f} 秒")
    say(f"  flask db upgrade：{'已是最新，无需迁移' if before == after else f'已从 {before} 迁移到 {after}'}"
        f"（{timings['upgrade']:.1f} 秒）")
    if "photos" in timings:
        say(f"  照片已恢复到当前配置的存储，用时 {timings['photos']:.1f} 秒")
        say("    " + timings["photos_output"].strip().replace("\n", "\n    "))
    say("恢复完成。请运行 flask --app wsgi doctor 检查配置，再启动服务")


# -- the drill ---------------------------------------------------------------------------------
def snapshot(env: dict, tokens: list[str] | None, out: Path) -> dict:
    """What an app instance on `env` serves for a few stalls: the public badge and the bytes of
    its photos. Its own process, so no cache of one instance can answer for the other."""
    env = {**env, "BADGE_CACHE": "off"}
    env.pop("REDIS_URL", None)  # a shared cache could answer for the other instance
    command = [sys.executable, str(Path(__file__).resolve()), "_snapshot", "--out", str(out)]
    if tokens is not None:
        command += ["--tokens", ",".join(tokens)]
    run(command, env, "读取公示页")
    return json.loads(out.read_text(encoding="utf-8"))


def command_snapshot(args) -> None:
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db

    app = create_app()
    with app.app_context():
        if args.tokens is not None:
            tokens = [t for t in args.tokens.split(",") if t]
        else:
            # Stalls with a verified credential first, so photos are compared too.
            tokens = list(db.session.execute(text(
                "SELECT s.token FROM stalls s ORDER BY (SELECT count(*) FROM credentials c "
                "WHERE c.merchant_id = s.merchant_id AND c.status = 'verified') DESC, s.id LIMIT :n"),
                {"n": STALLS_TO_COMPARE}).scalars())
    client = app.test_client()
    base = app.config["PUBLIC_BASE_URL"]
    stalls, photos = {}, {}
    for token in tokens:
        response = client.get(f"/api/v1/public/stalls/{token}")
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            body.pop("computed_at", None)  # when this instance computed the badge: differs by nature
        stalls[token] = {"status": response.status_code, "body": body}
        for url in _photo_urls(body):
            image = client.get(url.removeprefix(base))
            photos[url] = {"status": image.status_code, "bytes": len(image.data),
                           "sha256": hashlib.sha256(image.data).hexdigest()}
    Path(args.out).write_text(json.dumps({"tokens": tokens, "stalls": stalls, "photos": photos},
                                         ensure_ascii=False), encoding="utf-8")


def _photo_urls(value) -> list[str]:
    if isinstance(value, dict):
        return [url for item in value.values() for url in _photo_urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in _photo_urls(item)]
    if isinstance(value, str) and "/photos/" in value and value.endswith(".jpg"):
        return [value]
    return []


def where_different(live, copy, path: str = "") -> str:
    """The first place two JSON values differ, with both sides, for the operator."""
    if isinstance(live, dict) and isinstance(copy, dict):
        for key in sorted(set(live) | set(copy), key=str):
            if live.get(key) != copy.get(key):
                return where_different(live.get(key), copy.get(key), f"{path}.{key}")
    if isinstance(live, list) and isinstance(copy, list) and len(live) == len(copy):
        for index, (a, b) in enumerate(zip(live, copy)):
            if a != b:
                return where_different(a, b, f"{path}[{index}]")
    return f"{path.lstrip('.') or '整体'}：线上 {json.dumps(live, ensure_ascii=False)[:80]}，" \
           f"恢复后 {json.dumps(copy, ensure_ascii=False)[:80]}"


def drill(config, photos: bool = True) -> dict:
    """Back up, restore into a fresh database (and a scratch photo directory), compare what the
    restored app serves with the live one, drop the scratch copies. Raises Failed on a difference."""
    source = Database.parse(config.SQLALCHEMY_DATABASE_URI)
    env = dict(os.environ)
    report = {"steps": []}
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="xgz-drill-"))
    scratch_name = f"xgz_drill_{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"
    if source.kind == "postgresql":
        scratch = source.with_database(scratch_name)
    else:
        scratch = source.with_database(str(work / f"{scratch_name}.sqlite3"))
    created = False
    try:
        mark = time.monotonic()
        backup, manifest = make_backup(source, work / "backups", photos=photos, env=env)
        report["manifest"] = manifest
        report["steps"].append(("备份", time.monotonic() - mark))

        mark = time.monotonic()
        if source.kind == "postgresql":
            create_database(scratch)
            created = True
        restore_database(backup, scratch)
        report["steps"].append((f"恢复到新数据库 {scratch_name}", time.monotonic() - mark))

        mark = time.monotonic()
        restored_env = {**env, "DATABASE_URL": scratch.sqlalchemy_url()}
        before, after = upgrade(scratch, env)
        if before != manifest["database"]["revision"]:
            raise Failed(f"恢复后的迁移版本（{before}）与备份时（{manifest['database']['revision']}）不同")
        if before != after:
            raise Failed(f"被备份的数据库本身不是最新结构（迁移版本 {before}，当前代码要求 {after}）："
                         "请先对它运行 flask --app wsgi db upgrade，再演练")
        report["revision"] = after
        report["steps"].append(("flask db upgrade（应无变化）", time.monotonic() - mark))

        if photos:
            mark = time.monotonic()
            restored_env.pop("STORAGE_URL", None)  # the copy goes to a scratch local directory
            restored_env["UPLOAD_DIR"] = str(work / "uploads")
            restore_photos(backup / "photos", restored_env)
            report["steps"].append(("恢复照片到临时目录", time.monotonic() - mark))

        mark = time.monotonic()
        live = snapshot(env, None, work / "live.json")
        copy = snapshot(restored_env, live["tokens"], work / "restored.json")
        report["steps"].append(("比对公示页与照片", time.monotonic() - mark))
        report["stalls"] = len(live["tokens"])
        report["photos"] = len(live["photos"])
        if not live["tokens"]:
            raise Failed("数据库里没有摊位：演练无从比对")
        differences = [f"摊位 {token} 的公示页（{where_different(live['stalls'][token], copy['stalls'].get(token))}）"
                       for token in live["tokens"] if live["stalls"][token] != copy["stalls"].get(token)]
        differences += [f"照片 {url}" for url in live["photos"] if live["photos"][url] != copy["photos"].get(url)]
        if differences:
            raise Failed("恢复后的应用与线上不一致：" + "；".join(differences[:10]))
        if any(item["status"] != 200 for item in live["stalls"].values()):
            raise Failed("线上的公示页本身没有正常返回：" + ", ".join(
                token for token, item in live["stalls"].items() if item["status"] != 200))
        if photos and any(item["status"] != 200 for item in copy["photos"].values()):
            raise Failed("恢复后的照片无法读取")
    finally:
        mark = time.monotonic()
        if created:
            drop_database(scratch)
        shutil.rmtree(work, ignore_errors=True)
        report["steps"].append(("删除临时数据库与临时文件", time.monotonic() - mark))
        report["seconds"] = time.monotonic() - started
    return report


def command_drill(args) -> None:
    config = settings()
    source = Database.parse(config.SQLALCHEMY_DATABASE_URI)
    say(f"恢复演练：{source.shown()}" + (f"（schema {source.schema}）" if source.schema else ""))
    report = drill(config, photos=not args.no_photos)
    for line in describe(report["manifest"]):
        say(line)
    for step, seconds in report["steps"]:
        say(f"  ✓ {step}（{seconds:.1f} 秒）")
    say(f"演练通过：恢复后的数据库迁移版本 {report['revision']}，{report['stalls']} 个摊位的公示页完全相同，"
        f"{report['photos']} 张照片逐字节相同；总用时 {report['seconds']:.1f} 秒")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/backup.py", description="备份、恢复与恢复演练")
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup", help="备份数据库与照片到 BACKUP_DIR，并删除过期备份")
    backup.add_argument("--dir", help="备份目录（默认 BACKUP_DIR）")
    backup.add_argument("--no-photos", action="store_true", help="只备份数据库")
    prune_parser = commands.add_parser("prune", help="删除 BACKUP_KEEP_DAYS 天以前的备份（最新一份总会保留）")
    prune_parser.add_argument("--dir", help="备份目录（默认 BACKUP_DIR）")
    restore_parser = commands.add_parser("restore", help="把一份备份恢复到空数据库与照片存储")
    restore_parser.add_argument("backup", help="备份目录（xgz-<时间>）")
    restore_parser.add_argument("--database-url", help="目标数据库（默认 DATABASE_URL）")
    restore_parser.add_argument("--create", action="store_true", help="先新建目标数据库（PostgreSQL）")
    restore_parser.add_argument("--no-photos", action="store_true", help="只恢复数据库")
    drill_parser = commands.add_parser("drill", help="恢复演练：备份、恢复到临时新库、比对、删除临时库")
    drill_parser.add_argument("--no-photos", action="store_true", help="只演练数据库")
    snap = commands.add_parser("_snapshot")  # internal: one instance's view, for the drill
    snap.add_argument("--out", required=True)
    snap.add_argument("--tokens")
    args = parser.parse_args(argv)
    handlers = {"backup": command_backup, "prune": command_prune, "restore": command_restore,
                "drill": command_drill, "_snapshot": command_snapshot}
    try:
        handlers[args.command](args)
    except Failed as failure:
        print(f"失败：{failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
