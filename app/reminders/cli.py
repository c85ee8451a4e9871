"""`flask --app wsgi scheduler run` (the reminder process) and `flask --app wsgi reminders run JOB`."""
from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from app.core.time import SHANGHAI, to_local, to_naive_utc

scheduler_cli = AppGroup("scheduler", help="提醒调度进程")
reminders_cli = AppGroup("reminders", help="提醒任务")
log = logging.getLogger(__name__)


@scheduler_cli.command("run")
@click.option("--retry", default=15.0, show_default=True, help="未成为主进程时，每隔多少秒重试")
def scheduler_run(retry: float) -> None:
    """运行提醒调度进程（独立进程；同一时间只有一个主进程执行任务）"""
    from app.reminders.leader import make_leader_lock
    from app.reminders.scheduler import job_table, run_scheduler

    app = current_app._get_current_object()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own run log has the counts
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lock = make_leader_lock(app)
    click.echo(f"提醒调度进程已启动（时区 {app.config.get('TIMEZONE')}，主进程锁：{lock.describe()}）。按 Ctrl+C 退出。")
    for job in job_table(app):
        click.echo(f"  {job.name:<20} {job.trigger}  {job.description}")
    run_scheduler(app, lock=lock, stop=stop, retry_seconds=retry)
    click.echo("提醒调度进程已退出。")


def _parse_now(value: str | None) -> datetime | None:
    """ISO time; without an offset it is read as Asia/Shanghai local time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("请使用 ISO 格式，如 2026-03-01T09:00 或 2026-03-01T01:00+00:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return to_naive_utc(moment)


@reminders_cli.command("run")
@click.argument("job")
@click.option("--now", "now_text", default=None, help="按此时间运行（ISO；不带时区时按北京时间）")
def reminders_run(job: str, now_text: str | None) -> None:
    """立即运行一个提醒任务（flask reminders list 列出全部）"""
    from app.reminders.jobs import job_names
    from app.reminders.scheduler import execute

    if job not in job_names():
        raise click.BadParameter(f"未知任务 {job}；可选：{', '.join(job_names())}", param_hint="JOB")
    now = _parse_now(now_text)
    result = execute(current_app._get_current_object(), job, now=now)
    if result is None:
        raise click.ClickException(f"任务 {job} 运行失败，详见日志")
    when = to_local(now).isoformat() if now else "现在"
    click.echo(f"{job}（{when}）：{json.dumps(result, ensure_ascii=False)}")


@reminders_cli.command("list")
def reminders_list() -> None:
    """列出提醒任务及其运行时间"""
    from app.reminders.scheduler import job_table

    for job in job_table(current_app._get_current_object()):
        click.echo(f"{job.name:<20} {job.trigger}  宽限 {job.misfire_grace_time}s  {job.description}")


commands = [scheduler_cli, reminders_cli]
