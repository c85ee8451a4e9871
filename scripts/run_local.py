"""`make run`: the WeChat simulator, the API under gunicorn and the reminder scheduler (and,
when REDIS_URL is set, a background-job worker), each in its own process, on the embedded
defaults. Prints the URLs to open; Ctrl+C stops them all."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
API_PORT = int(os.environ.get("PORT", "5000"))
SIM_PORT = int(os.environ.get("WECHAT_SIM_PORT", "5055"))


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports() -> bool:
    """Before starting anything: a taken port would otherwise be found by the readiness check
    answering from whatever else holds it."""
    taken = [(name, port, variable) for name, port, variable in
             (("API", API_PORT, "PORT"), ("微信接口模拟器", SIM_PORT, "WECHAT_SIM_PORT")) if port_taken(port)]
    for name, port, variable in taken:
        print(f"无法启动：{name}要用的端口 {port} 已被占用（可能是另一个 make run 还在运行）。\n"
              f"  请先停止占用它的程序（查看：ss -ltnp | grep :{port}），或换一个端口，例如：{variable}={port + 1} make run",
              file=sys.stderr)
    return not taken


LOGS = ROOT / "instance" / "logs"


def start(name: str, args: list[str], log: str) -> subprocess.Popen:
    """Each process writes to its own file under instance/logs, so that the terminal ends with
    the block of addresses and keeps it."""
    print(f"启动 {name}（日志 instance/logs/{log}）", flush=True)
    with open(LOGS / log, "ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)


def tail(log: str, lines: int = 15) -> str:
    path = LOGS / log
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def wait_until_up(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except Exception:
            time.sleep(0.2)
    return False


def smoke_login(api: str) -> str:
    """Log `sim-alice` in through the simulator over real HTTP, as the mini-program would."""
    request = urllib.request.Request(f"{api}/api/v1/auth/login", data=json.dumps({"code": "sim-alice"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        return f"成功（用户 {body['user']['id']}）"
    except Exception as exc:  # shown to the operator, not raised: the services keep running
        return f"失败：{exc}"


def console_login_link() -> str | None:
    """A one-time console login link for the demo administrator (the same command the first
    admin of a real deployment uses), so the console opens without a phone at hand."""
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "console", "login-link", "demo-admin"],
                            capture_output=True, text=True, timeout=60)
    links = [word for word in result.stdout.split() if word.startswith("http") and "/console/" in word]
    return links[0] if result.returncode == 0 and links else None


def demo_stall_url(api: str) -> str | None:
    sys.path.insert(0, str(ROOT))
    try:
        from app import create_app
        from app.extensions import db
        from app.markets.models import Stall

        with create_app().app_context():
            stall = db.session.query(Stall).order_by(Stall.id).first()
            return f"{api}/s/{stall.token}" if stall else None
    except Exception:
        return None


def main() -> int:
    if not check_ports():
        return 1
    os.environ.setdefault("WECHAT_API_BASE_URL", f"http://127.0.0.1:{SIM_PORT}/")
    api = os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{API_PORT}")
    LOGS.mkdir(parents=True, exist_ok=True)
    processes = [start("微信接口模拟器", [str(BIN / "flask"), "--app", "wsgi", "wechat-sim", "--port", str(SIM_PORT)],
                       "wechat-sim.log")]
    if not wait_until_up(f"http://127.0.0.1:{SIM_PORT}/"):
        print("微信接口模拟器未能启动：\n" + tail("wechat-sim.log"), file=sys.stderr)
    # The production config (route-only access log, JSON errors), two workers on a laptop.
    processes.append(start("API（gunicorn）", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "-w", "2",
                                              "--access-logfile", str(LOGS / "access.log"),
                                              "-b", f"127.0.0.1:{API_PORT}", "wsgi:app"], "api.log"))
    processes.append(start("提醒调度进程", [str(BIN / "flask"), "--app", "wsgi", "scheduler", "run"], "scheduler.log"))
    if os.environ.get("REDIS_URL"):
        # With Redis the background jobs (sticker sheets, imports …) run on RQ workers; without it
        # they run in threads of each API worker, started with the worker by the gunicorn config
        # (deploy/gunicorn.conf.py post_worker_init), and no worker process is needed.
        processes.append(start("后台任务进程", [str(BIN / "flask"), "--app", "wsgi", "jobs", "worker", "--name", "local"],
                               "worker.log"))
    up = wait_until_up(f"http://127.0.0.1:{API_PORT}/healthz")
    if not up or any(process.poll() is not None for process in processes):
        # Our own processes must be the ones answering: a port taken meanwhile makes gunicorn
        # exit while something else answers the health check.
        print("启动失败：API 或其他进程没有起来（端口可用 PORT=…、WECHAT_SIM_PORT=… 更换）。API 日志最后几行：\n"
              + tail("api.log"), file=sys.stderr)
        stop_all(processes)
        return 1
    stall = demo_stall_url(api)
    login = smoke_login(api)
    print("\n======== 小个专党建小程序后端已启动 ========", flush=True)
    print(f"  API 文档        {api}/api/v1/docs")
    print(f"  OpenAPI         {api}/api/v1/openapi.json")
    print(f"  健康检查        {api}/readyz")
    print(f"  微信接口模拟器  http://127.0.0.1:{SIM_PORT}/")
    if stall:
        print(f"  演示摊位亮照页  {stall}")
    link = console_login_link()
    print(f"  管理后台        {api}/console/（扫码登录；演示管理员一次性登录链接：{link or '生成失败，见 api.log'}）")
    print(f"  演示登录 sim-alice：{login}")
    worker_log = "、worker.log" if os.environ.get("REDIS_URL") else ""
    print(f"  日志            instance/logs/（api.log、access.log、scheduler.log{worker_log}、wechat-sim.log）")
    print("  后台任务        " + ("RQ 任务进程（REDIS_URL 已设置）" if os.environ.get("REDIS_URL")
                                 else "在每个 API 进程的线程中执行，随进程启动（未设置 REDIS_URL）"))
    print("  按 Ctrl+C 停止全部进程\n", flush=True)
    return watch(processes)


def stop_all(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def watch(processes) -> int:
    """Until Ctrl+C (exit 0) or until one of the processes dies (exit 1, the others stopped)."""
    interrupted = False

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
    # A second Ctrl+C or TERM (a terminal sends it to the whole group) must not cut the shutdown
    # short and leave a child running.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_all(processes)
    if not interrupted:
        print("有进程意外退出，已停止全部进程；请查看 instance/logs/ 下的日志", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--check-ports"]:  # make run's first step, before installing anything
        sys.exit(0 if check_ports() else 1)
    sys.exit(main())
