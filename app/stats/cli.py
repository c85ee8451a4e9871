"""`flask --app wsgi stats rollups …`: build and check the coverage roll-ups."""
from __future__ import annotations

import click
from flask.cli import AppGroup

stats_cli = AppGroup("stats", help="覆盖情况统计")
rollups_cli = AppGroup("rollups", help="覆盖情况汇总（按市场、按地区）")
stats_cli.add_command(rollups_cli)


@rollups_cli.command("rebuild")
@click.option("--if-missing", is_flag=True, help="只在尚未建立时建立（升级、部署脚本中使用）")
def rebuild_command(if_missing: bool) -> None:
    """从头统计全部市场与地区的汇总（升级到带汇总的版本、或批量导入数据之后运行一次）"""
    from sqlalchemy import func, select

    from app.core.progress import progress
    from app.extensions import db
    from app.markets.models import Market, Merchant
    from app.stats import rollups

    session = db.session()
    if if_missing and rollups.is_built(session):
        click.echo("统计汇总已建立，无需重建")
        return
    total = session.scalar(select(func.count()).select_from(Merchant)) + session.scalar(
        select(func.count()).select_from(Market))
    with progress(total, "统计汇总", " 个经营主体与市场") as advance:
        counted = rollups.rebuild(session, progress=advance)
    session.commit()
    click.echo(f"完成：{counted['markets']} 个市场、{counted['merchants']} 个经营主体已汇总")


@rollups_cli.command("check")
def check_command() -> None:
    """把已存储的汇总与从头统计的结果比对；不一致时列出并以非零状态退出"""
    from app.extensions import db
    from app.stats import rollups

    found = rollups.differences(db.session())
    for line in found[:50]:
        click.echo(line)
    if found:
        raise click.ClickException(f"汇总与实际数据有 {len(found)} 处不一致：运行 flask --app wsgi stats rollups rebuild")
    click.echo("汇总与实际数据一致")


commands = [stats_cli]
