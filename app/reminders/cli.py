"""`flask scheduler run` — placeholder until the reminders feature lands its jobs."""
import logging
import signal
import time

import click
from flask.cli import AppGroup

scheduler_cli = AppGroup("scheduler", help="提醒调度进程")
log = logging.getLogger(__name__)


@scheduler_cli.command("run")
def scheduler_run() -> None:
    """运行提醒调度进程（独立进程，不在 Web 进程内）"""
    click.echo("提醒调度进程已启动（暂无任务）。按 Ctrl+C 退出。")
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    try:
        while not stop["flag"]:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


commands = [scheduler_cli]
