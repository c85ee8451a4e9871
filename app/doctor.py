"""`flask doctor`: is this configuration fit to serve? Each check gives a finding: ok, a warning,
or fatal. In production (APP_ENV=production) fatal findings stop `flask doctor` with exit code 1
and keep gunicorn from starting (deploy/gunicorn.conf.py); on a development machine the same
findings are warnings where they only matter for production (the simulator, a loopback URL)."""
from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass
from urllib.parse import urlparse

from flask import Flask
from sqlalchemy import text

OK, WARN, FATAL = "ok", "warning", "fatal"
SIMULATOR_APPID, SIMULATOR_SECRET = "wxsimulator000001", "simulator-secret"


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str


def _loopback(host: str | None) -> bool:
    if not host:
        return True
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def public_url_problem(url: str) -> str | None:
    """Why stickers printed with this base URL would not work for a consumer, or None."""
    parsed = urlparse(url)
    if _loopback(parsed.hostname):
        return f"PUBLIC_BASE_URL 指向本机（{url}）：按它印出的二维码在别人的手机上打不开"
    if parsed.scheme != "https":
        return f"PUBLIC_BASE_URL 不是 https（{url}）：微信“扫普通链接二维码打开小程序”与浏览器都要求 https"
    return None


def examine(app: Flask) -> list[Finding]:
    production = app.config.get("APP_ENV") == "production"
    serious = FATAL if production else WARN
    findings: list[Finding] = []

    def add(level: str, check: str, message: str) -> None:
        findings.append(Finding(level, check, message))

    if not app.config.get("SECRET_KEY_FROM_ENV"):
        add(serious, "SECRET_KEY", "SECRET_KEY 未在环境变量中设置（使用的是自动生成并保存在 instance/ 的密钥）："
                                   "多台机器会各不相同，换机器后所有登录与签到码失效")
    elif len(app.config["SECRET_KEY"]) < 32:
        add(FATAL if production else WARN, "SECRET_KEY", "SECRET_KEY 太短（少于 32 个字符）")
    else:
        add(OK, "SECRET_KEY", "已从环境变量设置")
    findings.extend(_key_fallbacks(app))

    problem = public_url_problem(app.config["PUBLIC_BASE_URL"])
    add(serious if problem else OK, "PUBLIC_BASE_URL", problem or app.config["PUBLIC_BASE_URL"])

    from app.extensions import db

    with app.app_context():
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            add(OK, "数据库", f"可连接（{db.engine.url.render_as_string(hide_password=True)}）")
            findings.append(_migration_state(app))
            if findings[-1].level == OK:
                findings.append(_coverage_rollups())
        except Exception as exc:  # the finding is the point: say what failed
            add(FATAL, "数据库", f"无法连接：{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

        from app.extensions import kv

        if kv.shared:
            add(OK if kv.ping() else FATAL, "Redis", "可连接" if kv.ping() else "已配置 REDIS_URL 但无法连接")
        else:
            add(WARN if production else OK, "Redis", "未配置 REDIS_URL：只能单机运行（多台 API 服务器必须共用 Redis）")

    findings.append(_photo_store(app))
    findings.extend(_job_workers(app))

    simulator = (app.config["WECHAT_APPID"] == SIMULATOR_APPID or app.config["WECHAT_SECRET"] == SIMULATOR_SECRET
                 or _loopback(urlparse(app.config["WECHAT_API_BASE_URL"]).hostname))
    add(serious if simulator else OK, "微信接口",
        "使用的是本地模拟器的凭据或地址（WECHAT_APPID / WECHAT_SECRET / WECHAT_API_BASE_URL）" if simulator
        else f"{app.config['WECHAT_API_BASE_URL']}（appid {app.config['WECHAT_APPID']}）")
    return findings


# How long after a key rotation SECRET_KEY_FALLBACKS should go: the longest thing they keep
# valid is a check-in code or code-image URL (60 s), plus the time to restart every instance.
FALLBACK_REMOVE_AFTER_MINUTES = 5


def _key_fallbacks(app: Flask) -> list[Finding]:
    """A rotation in progress is a warning, never fatal (production must start with it): the
    old key still validates check-in codes, so it must not stay configured."""
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or []
    if not fallbacks:
        return []
    findings = [Finding(WARN, "SECRET_KEY_FALLBACKS",
                        f"配置了 {len(fallbacks)} 个旧密钥：密钥轮换进行中，旧密钥只让轮换前显示的签到码与签到码图片"
                        f"继续有效（登录凭证一律作废）。全部实例换上新密钥 {FALLBACK_REMOVE_AFTER_MINUTES} 分钟后，"
                        "请删除 SECRET_KEY_FALLBACKS 并再次重启")]
    if app.config["SECRET_KEY"] in fallbacks:
        findings.append(Finding(WARN, "SECRET_KEY_FALLBACKS", "SECRET_KEY_FALLBACKS 中含有当前的 SECRET_KEY：轮换没有生效"))
    return findings


def _migration_state(app: Flask) -> Finding:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from app.extensions import db

    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    heads = set(script.get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return Finding(OK, "数据库结构", f"已是最新（{', '.join(sorted(heads))}）")
    return Finding(FATAL, "数据库结构", f"未迁移到最新：当前 {', '.join(sorted(current)) or '空库'}，"
                                     f"应为 {', '.join(sorted(heads))}。请运行 flask --app wsgi db upgrade")


def _coverage_rollups() -> Finding:
    """After the upgrade that introduced them, the coverage roll-ups need one rebuild; until
    then /stats/overview refuses (503) rather than give figures that miss markets."""
    from app.extensions import db

    # Plain SQL: the doctor is imported by features, so it must not import app.stats (a cycle);
    # the same test as app.stats.rollups.is_built.
    built = db.session.execute(text("SELECT 1 FROM region_coverage WHERE scope_code = '000000'")).first() or \
        db.session.execute(text("SELECT 1 FROM markets LIMIT 1")).first() is None
    if built:
        return Finding(OK, "统计汇总", "已建立（写入时随事务更新）")
    return Finding(WARN, "统计汇总", "尚未建立：覆盖情况统计暂不可用。请运行 flask --app wsgi stats rollups rebuild")


def _job_workers(app: Flask) -> list[Finding]:
    """With RQ (Redis configured) the jobs wait for `flask jobs worker` processes: none listening
    on the queue means every sticker sheet, export and import stays queued. Without Redis they
    run in the API processes' threads and there is nothing to check."""
    from app.jobs.dispatch import backend

    if backend(app) != "rq":
        return [Finding(OK, "后台任务", "在 API 进程的线程中执行（未配置 Redis，无需任务进程）")]
    queue_name = app.config.get("JOBS_QUEUE", "xgz")
    try:
        from rq import Worker

        from app.jobs.rq_backend import connection, queue

        workers = Worker.all(connection=connection(app), queue=queue(app))
    except Exception as exc:  # Redis unreachable: the Redis finding says so already
        return [Finding(WARN, "后台任务", f"无法查询队列 {queue_name} 的任务进程：{type(exc).__name__}")]
    if not workers:
        return [Finding(WARN, "后台任务", f"没有任务进程在处理队列 {queue_name}：贴纸、导出与导入会一直排队"
                                          "（启动 xgz-worker@ 服务，或运行 flask --app wsgi jobs worker）")]
    return [Finding(OK, "后台任务", f"队列 {queue_name} 有 {len(workers)} 个任务进程")]


def _upload_dir(path: str) -> Finding:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
        return Finding(OK, "上传目录", f"可写（{path}）")
    except OSError as exc:
        return Finding(FATAL, "上传目录", f"不可写（{path}）：{exc.strerror or exc}")


def _photo_store(app: Flask) -> Finding:
    """Where uploaded photos go: the local directory (writable?) or the bucket (reachable,
    writable and readable: a probe object is put, read back and deleted). A store that cannot
    take a photo is fatal on any machine, as the upload directory always was: every upload
    would fail."""
    from app.core.objectstore import ObjectMissing, StorageMisconfigured, StorageUnavailable, s3_settings, store_for

    try:
        settings = s3_settings(app.config)
    except StorageMisconfigured as exc:
        return Finding(FATAL, "照片存储", str(exc))
    if settings is None:
        return _upload_dir(app.config["UPLOAD_DIR"])
    store = store_for(app)
    # Put, read back and delete: the three things serving photos takes (and no bucket-level
    # permission, which a key limited to its prefix may lack). Outside photos/: never backed up.
    probe = f".doctor/probe-{secrets.token_hex(8)}"
    try:
        store.put(probe, b"doctor", content_type="text/plain")
        readable = store.get(probe).read() == b"doctor"
        store.delete(probe)
    except (StorageUnavailable, ObjectMissing) as exc:
        reason = getattr(exc, "reason", "写入后读不到探测对象")
        return Finding(FATAL, "照片存储", f"{store.description} 不可用：{reason[:200]}"
                                        "（请检查 STORAGE_URL、STORAGE_S3_ENDPOINT_URL、存储桶是否存在、访问密钥与权限）")
    if not readable:
        return Finding(FATAL, "照片存储", f"{store.description} 读回的探测对象与写入的不同")
    return Finding(OK, "照片存储", f"{store.description} 可读写")


def fatal(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == FATAL]


def report(findings: list[Finding]) -> str:
    marks = {OK: "✓", WARN: "!", FATAL: "✗"}
    lines = [f"{marks[f.level]} {f.check}：{f.message}" for f in findings]
    bad = fatal(findings)
    lines.append(f"{len(bad)} 项致命问题，不能上线" if bad else "没有致命问题")
    return "\n".join(lines)
