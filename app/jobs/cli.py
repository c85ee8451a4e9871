"""`flask --app wsgi jobs …`: the background-job worker and upkeep."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="后台任务（贴纸 PDF 等）")


@jobs_cli.command("worker")
@click.option("--name", default=None, help="进程名称（systemd 单元传入 主机名-序号）")
@click.option("--burst", is_flag=True, help="处理完队列中已有的任务后退出（测试与排障用）")
def worker_command(name: str | None, burst: bool) -> None:
    """运行后台任务进程（RQ，需要 REDIS_URL）；SIGTERM 时做完当前任务再退出"""
    from app.jobs.rq_backend import run_worker

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("未设置 REDIS_URL：没有 Redis 时后台任务在 API 进程的线程中执行，无需单独的任务进程")
    click.echo(f"后台任务进程启动：队列 {app.config.get('JOBS_QUEUE', 'xgz')}")
    run_worker(app, name=name, burst=burst)


@jobs_cli.command("sweep")
def sweep_command() -> None:
    """立即整理一次后台任务：中断的任务重新排队或判为失败，过期的结果文件删除，已结束的旧任务清除"""
    from app.jobs.dispatch import backend, dispatch
    from app.jobs.sweep import sweep

    app = current_app._get_current_object()
    rq = backend(app) == "rq"
    counts = sweep(app, hand_over=(lambda public_id, kind: dispatch(app, public_id, kind)) if rq else None,
                   requeue_stranded=rq)
    click.echo(f"重新排队 {counts['requeued']} 个，判为中断失败 {counts['interrupted']} 个，"
               f"删除过期结果 {counts['expired']} 个，重新交给队列 {counts['redispatched']} 个，"
               f"清除已结束的旧任务 {counts['purged']} 个")


commands = [jobs_cli]
