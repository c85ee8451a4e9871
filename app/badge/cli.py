"""`flask --app wsgi badge …`: keep the stored badges in step with the data."""
from __future__ import annotations

import click
from flask.cli import AppGroup

badge_cli = AppGroup("badge", help="摊位公示（亮照页）")


@badge_cli.command("rebuild")
@click.option("--missing-only", is_flag=True, help="只生成尚无存储的摊位（批量导入之后）")
def rebuild_command(missing_only: bool) -> None:
    """重新计算并存储全部摊位的公示内容（迁移或批量导入摊位之后运行一次）"""
    from app.badge.cache import rebuild
    from app.badge.facts import fact
    from app.core.progress import progress
    from app.extensions import db

    tokens = fact("all_tokens")(missing_only)
    with progress(len(tokens), "计算公示内容", " 个摊位") as advance:
        stored = rebuild(tokens, progress=advance)
    db.session.remove()
    click.echo(f"完成：{stored} 个摊位的公示内容已存储" + (f"（{len(tokens) - stored} 个已不存在）" if stored < len(tokens) else ""))


commands = [badge_cli]
