"""Issue 13 item 1: the deployment kit's files are valid as shipped. nginx checks the whole site
(a throwaway certificate stands in for the county's), systemd checks the units; the two-host
test (test_two_hosts.py) runs the locations file for real."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.county import BIN, NGINX_DIR, PROJECT

SYSTEMD_DIR = PROJECT / "deploy" / "systemd"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="未安装 nginx（apt-get install nginx）")
def test_the_site_as_shipped_passes_nginx_t(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("需要 openssl 生成临时证书")
    site = (NGINX_DIR / "xgz-site.conf").read_text()
    cert, key = tmp_path / "site.crt", tmp_path / "site.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=xgz.example.gov.cn", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    # Only what Debian's layout provides differs: certificate, snippet, cache and log locations.
    site = (site.replace("/etc/nginx/tls/xgz.example.gov.cn.crt", str(cert))
                .replace("/etc/nginx/tls/xgz.example.gov.cn.key", str(key))
                .replace("/etc/nginx/snippets/xgz-locations.conf", str(NGINX_DIR / "xgz-locations.conf"))
                .replace("/var/cache/nginx/xgz-badge", str(tmp_path / "cache"))
                .replace("/var/log/nginx/", f"{tmp_path}/"))
    directives = "\n".join(line.split("#", 1)[0] for line in site.splitlines())
    assert "/etc/" not in directives
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    include /etc/nginx/mime.types;
    include {NGINX_DIR}/xgz-log-format.conf;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/site.conf;
}}
""")
    done = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_the_body_limit_and_timeouts_agree_with_the_app_and_gunicorn():
    from config import Config
    import importlib.util

    locations = (NGINX_DIR / "xgz-locations.conf").read_text()
    body_mb = int(re.search(r"client_max_body_size (\d+)m;", locations).group(1))
    assert body_mb * 1024 * 1024 >= Config().MAX_CONTENT_LENGTH
    spec = importlib.util.spec_from_file_location("gunicorn_conf", PROJECT / "deploy" / "gunicorn.conf.py")
    gunicorn_conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gunicorn_conf)
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", locations).group(1))
    assert read_timeout > gunicorn_conf.timeout  # the API's own answer, not nginx's 504, ends a slow request


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="没有 systemd-analyze")
@pytest.mark.parametrize("unit", sorted(p.name for p in SYSTEMD_DIR.glob("*.service")))
def test_systemd_units_verify(unit, tmp_path):
    """systemd-analyze verify with the paths of this checkout (the units name /opt/xgz/...)."""
    text = (SYSTEMD_DIR / unit).read_text()
    for command in re.findall(r"^ExecStart=(\S+)", text, re.M):
        assert command.startswith("/opt/xgz/venv/bin/"), command
    local = (text.replace("/opt/xgz/venv/bin/", f"{BIN}/").replace("/opt/xgz/app", str(PROJECT))
                 .replace("EnvironmentFile=/etc/xgz/xgz.env", f"EnvironmentFile={tmp_path}/xgz.env"))
    (tmp_path / "xgz.env").write_text("APP_ENV=production\n")
    target = tmp_path / unit.replace("@.service", "@1.service")
    target.write_text(local)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(target)], capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "xgz" in line and "User=" not in line and "group" not in line.lower()]
    assert done.returncode == 0 or not problems, done.stdout + done.stderr
    assert not problems, problems


def test_worker_unit_runs_a_command_the_app_has():
    """Every flask command a unit starts exists (the job worker arrives with the jobs engine)."""
    from click.testing import CliRunner  # noqa: F401  (flask's CLI is click)

    for unit in SYSTEMD_DIR.glob("*.service"):
        for line in re.findall(r"^ExecStart=\S+/flask --app wsgi (.+)$", unit.read_text(), re.M):
            words = [w for w in line.split() if not w.startswith("-") and "%" not in w][:2]
            done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *words, "--help"], cwd=PROJECT,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (unit.name, words, done.stderr[-500:])
