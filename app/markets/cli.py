"""`flask --app wsgi stalls …`: print a market's sticker sheet."""
from __future__ import annotations

import click
from flask.cli import AppGroup

stalls_cli = AppGroup("stalls", help="摊位与二维码")


@stalls_cli.command("qr-sheet")
@click.argument("market_id", type=int)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="输出的 PDF 文件")
@click.option("--allow-local", is_flag=True, help="允许 PUBLIC_BASE_URL 为本机或 http 地址（仅用于测试打印）")
def qr_sheet(market_id: int, output: str, allow_local: bool) -> None:
    """生成市场全部摊位的二维码贴纸（A4，每页 24 个）"""
    import math
    import os
    import time

    from sqlalchemy import func, select

    from app.core.progress import progress
    from app.extensions import db
    from app.markets.models import Market, Stall
    from app.markets.qr import PER_PAGE, market_stall_rows, write_sticker_sheet

    from flask import current_app

    from app.doctor import public_url_problem

    problem = public_url_problem(current_app.config["PUBLIC_BASE_URL"])
    if problem and not allow_local:  # a sticker is printed once and pasted for years
        raise click.ClickException(f"{problem}。请先设置正确的 PUBLIC_BASE_URL；仅测试打印时可加 --allow-local")
    market = db.session.get(Market, market_id)
    if market is None:
        raise click.ClickException(f"市场 {market_id} 不存在")
    count = db.session.scalar(select(func.count()).select_from(Stall).where(Stall.market_id == market.id))
    if not count:
        raise click.ClickException(f"市场「{market.name}」还没有摊位")
    total = math.ceil(count / PER_PAGE)
    started = time.monotonic()
    tmp = f"{output}.part"
    with open(tmp, "wb") as out, progress(total, f"生成贴纸（{count} 个摊位）", " 页") as advance:
        pages = write_sticker_sheet(out, market.name, market_stall_rows(market.id), lambda page: advance(1))
    os.replace(tmp, output)
    size_kb = os.path.getsize(output) / 1024
    click.echo(f"已生成 {output}：{count} 个摊位，{pages} 页，{size_kb:.0f} KB，用时 {time.monotonic() - started:.1f} 秒")


commands = [stalls_cli]
