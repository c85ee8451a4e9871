"""Issue 12 item 9: reproducible installs. Both locks pin every package of the tree with hashes;
production's lock holds no test tool; what is installed here is exactly the dev lock."""
import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "schemathesis", "hypothesis", "zxing-cpp", "uv"}


def _lock(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    entries = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    pins = {package.lower().replace("_", "-"): version for package, version, _ in entries}
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(requirement_lines) == len(entries), "every requirement pinned with at least one hash"
    return pins


def test_both_locks_pin_the_whole_tree_with_hashes_and_production_has_no_test_tools():
    runtime, dev = _lock("requirements.txt"), _lock("requirements-dev.txt")
    assert {"flask", "sqlalchemy", "psycopg", "werkzeug", "itsdangerous"} <= set(runtime)
    assert not TEST_TOOLS & set(runtime) and TEST_TOOLS <= set(dev)
    assert all(dev[name] == version for name, version in runtime.items())  # one set of versions
    # Kept on purpose: wechatpy imports it at import time without declaring it (requirements.in).
    assert "cryptography" in runtime


def test_what_is_installed_is_the_dev_lock():
    dev = _lock("requirements-dev.txt")
    installed = {dist.metadata["Name"].lower().replace("_", "-"): dist.version for dist in metadata.distributions()}
    unexpected = {name: version for name, version in installed.items()
                  if name not in ("pip", "setuptools", "wheel") and dev.get(name) != version}
    assert unexpected == {}, "installed beside or against the lock (run make lock, or make clean && make)"
