"""`flask --app wsgi …` commands of the operations contract."""
from __future__ import annotations

import importlib
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import AppGroup

from app.extensions import db

seed_cli = AppGroup("seed", help="加载数据")
users_cli = AppGroup("users", help="用户与角色")
regions_cli = AppGroup("regions", help="行政区划")
photos_cli = AppGroup("photos", help="照片存储：备份与恢复")

# Feature packages that add their own command groups (module must define `commands`, a list).
FEATURE_CLI = ("app.markets.cli", "app.reminders.cli", "app.badge.cli", "app.jobs.cli", "app.stats.cli",
               "app.console.cli")


@seed_cli.command("demo")
def seed_demo_command() -> None:
    """加载演示数据（可重复执行）"""
    from app.demo import seed_demo

    click.echo("加载演示数据…")
    seed_demo()
    click.echo("演示数据已就绪。")


@contextmanager
def committed_or_refused():
    """One transaction for a command: committed when the block succeeds; a refusal of the
    services (APIError) rolls back and becomes the command's Chinese error message."""
    from app.core.errors import APIError

    try:
        yield
        db.session.commit()
    except APIError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.message} {exc.details or ''}".strip())


@users_cli.command("grant")
@click.argument("openid")
@click.argument("role")
@click.option("--scope", default=None, help="region:CODE | market:ID | org:ID")
@click.option("--reason", default="命令行授权")
def users_grant(openid: str, role: str, scope: str | None, reason: str) -> None:
    """授予角色（用户从未登录过也会先创建）"""
    from app.identity.services import find_or_create_user, grant_role

    with committed_or_refused():
        grant = grant_role(find_or_create_user(openid), role, scope, reason=reason)
    click.echo(f"已授予 {openid}: {grant.role} {grant.scope or '(无范围)'}")


@users_cli.command("revoke")
@click.argument("openid")
@click.argument("role")
@click.option("--scope", default=None, help="region:CODE | market:ID | org:ID")
@click.option("--reason", required=True, help="撤销原因（记入审计日志）")
def users_revoke(openid: str, role: str, scope: str | None, reason: str) -> None:
    """撤销角色（记入审计日志；所有服务进程的下一次请求起生效）"""
    from app.identity.models import User
    from app.identity.services import find_grant, revoke_role
    from app.reminders.notices import tell_role_revoked

    user = db.session.scalar(db.select(User).where(User.openid == openid))
    if user is None:
        raise click.ClickException(f"找不到用户 {openid}")
    with committed_or_refused():
        grant = revoke_role(find_grant(user, role, scope), actor=None, actor_role="cli", reason=reason)
        tell_role_revoked(grant, reason)
    click.echo(f"已撤销 {openid}: {grant.role} {grant.scope or '(无范围)'}")


@regions_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"), required=False)
@click.option("--builtin", is_flag=True, help="导入随产品提供的全国省、地、县三级行政区划")
def regions_import(csv_file, builtin: bool) -> None:
    """导入行政区划：--builtin 为随产品提供的全国表，或给出 GB/T 2260 CSV 文件（code,name）；已有的代码不变"""
    from app.core.regions import builtin_regions, read_gbt2260_csv, upsert_regions

    if builtin == (csv_file is not None):
        raise click.UsageError("请二选一：flask regions import --builtin，或 flask regions import 文件.csv")
    try:
        rows = builtin_regions() if builtin else read_gbt2260_csv(csv_file)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    added = upsert_regions(rows)
    db.session.commit()
    click.echo(f"读取 {len(rows)} 条，新增 {added} 条。")


def _copy_photos(source, target, objects: list, label: str):
    from app.core.objectstore import StorageUnavailable
    from app.core.progress import progress
    from app.core.storage import copy_photos

    try:
        with progress(len(objects), label, " 个") as advance:
            return copy_photos(source, target, objects, advance)
    except StorageUnavailable as exc:  # the run is idempotent: running it again resumes
        raise click.ClickException(f"照片存储不可用：{exc.reason[:300]}。已复制的不会重复复制，恢复后请重新运行")


@photos_cli.command("backup")
@click.argument("directory", type=click.Path(file_okay=False))
def photos_backup(directory: str) -> None:
    """把当前照片存储（本地目录或对象存储）中的全部照片复制到本地目录 DIRECTORY（已有且大小相同的跳过，可重复执行）"""
    from app.core.objectstore import LocalStore, StorageUnavailable, current_store
    from app.core.storage import photo_objects

    try:
        source = current_store()
        objects = photo_objects(source)
    except StorageUnavailable as exc:
        raise click.ClickException(f"照片存储不可用：{exc.reason[:300]}")
    result = _copy_photos(source, LocalStore(directory), objects, "备份照片")
    click.echo(f"备份完成：{source.description} 共 {len(objects)} 个照片文件（原图与缩略图各算一个），"
               f"新复制 {result.copied} 个，已存在跳过 {result.skipped} 个"
               + (f"，复制时已不存在 {result.vanished} 个" if result.vanished else "") + f"；备份目录 {directory}")


@photos_cli.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def photos_restore(directory: str) -> None:
    """把 DIRECTORY（flask photos backup 的备份目录，或旧的 UPLOAD_DIR）中的照片复制回当前照片存储（已有且大小相同的跳过，可重复执行）"""
    from app.core.objectstore import LocalStore, StorageUnavailable, current_store
    from app.core.storage import photo_objects

    source = LocalStore(directory)
    objects = photo_objects(source)
    if not objects:
        raise click.ClickException(f"{directory} 中没有照片（应含 photos/xx/….jpg，即 flask photos backup 的备份目录）")
    try:
        target = current_store()
    except StorageUnavailable as exc:
        raise click.ClickException(f"照片存储不可用：{exc.reason[:300]}")
    result = _copy_photos(source, target, objects, "恢复照片")
    click.echo(f"恢复完成：备份中共 {len(objects)} 个照片文件，复制到 {target.description} {result.copied} 个，"
               f"已存在跳过 {result.skipped} 个")


@click.command("wechat-sim")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5055, type=int)
def wechat_sim(host: str, port: int) -> None:
    """运行微信接口模拟器（开发与测试用）"""
    from flask import current_app
    from werkzeug.serving import run_simple

    from app.wechat.simulator import create_simulator_app

    sim = create_simulator_app(appid=current_app.config["WECHAT_APPID"],
                               secret=current_app.config["WECHAT_SECRET"])
    click.echo(f"微信接口模拟器: http://{host}:{port}/")
    run_simple(host, port, sim, threaded=True, use_reloader=False)


@click.command("doctor")
def doctor_command() -> None:
    """检查配置是否可以上线：密钥、对外地址、数据库与迁移、Redis、照片存储、微信凭据（有致命问题时退出码为 1）"""
    from flask import current_app

    from app.doctor import examine, fatal, report

    findings = examine(current_app._get_current_object())
    click.echo(report(findings))
    if fatal(findings):
        raise SystemExit(1)


def register(app: Flask) -> None:
    for group in (seed_cli, users_cli, regions_cli, photos_cli):
        app.cli.add_command(group)
    app.cli.add_command(wechat_sim)
    app.cli.add_command(doctor_command)
    for path in FEATURE_CLI:
        module = importlib.import_module(path)  # a bad path fails loudly, not a missing command
        for command in module.commands:
            app.cli.add_command(command)
