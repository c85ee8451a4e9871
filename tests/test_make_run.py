"""Issue 12 item 3: `make run` on a taken port says which port and how to choose another, and
exits non-zero, instead of announcing a server that is somebody else's."""
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_taken_port_stops_make_run_with_the_way_out():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for args in (["--check-ports"], []):
            result = subprocess.run([sys.executable, "scripts/run_local.py", *args], cwd=ROOT, capture_output=True,
                                    text=True, timeout=60, env={**os.environ, "PORT": str(port)})
            assert result.returncode == 1, result
            assert f"端口 {port} 已被占用" in result.stderr and f"PORT={port + 1} make run" in result.stderr
            assert "已启动" not in result.stdout
