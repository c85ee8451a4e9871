"""`flask --app wsgi console …`: the first admin's way in."""
from __future__ import annotations

import click
from flask.cli import AppGroup

console_cli = AppGroup("console", help="管理后台")


@console_cli.command("login-link")
@click.argument("openid")
def login_link(openid: str) -> None:
    """打印一次性的管理后台登录链接（给首位管理员：在浏览器中打开并点击登录；限时、只能使用一次）"""
    from flask import current_app
    from sqlalchemy import select

    from app.cli import committed_or_refused
    import app.console.tickets as tickets
    from app.console.sessions import may_use_console
    from app.extensions import db
    from app.identity.models import User

    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None:
        raise click.ClickException(f"找不到用户 {openid}。请先授予角色：flask --app wsgi users grant {openid} admin")
    if not may_use_console(user):
        raise click.ClickException(f"用户 {openid} 没有管理后台的角色（系统管理员、市场监管人员、市场管理方或支部书记）。"
                                   f"请先授予：flask --app wsgi users grant {openid} admin")
    with committed_or_refused():
        ticket = tickets.new_login_link(user)
    click.echo(f"{current_app.config['PUBLIC_BASE_URL']}/console/login/link/{ticket.ticket}")
    click.echo(f"（{current_app.config['CONSOLE_LOGIN_LINK_MINUTES']} 分钟内有效，只能使用一次；"
               f"打开后点击「登录管理后台」。请勿转发给他人。）", err=True)


commands = [console_cli]
