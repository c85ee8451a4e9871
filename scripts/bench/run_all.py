"""`make bench`: every speed bar of QUALITY.md, one script after another (they share the
machine's two cores, so never in parallel). Exits non-zero when any bar is missed."""
from __future__ import annotations

import subprocess
import sys

BENCHES = (
    ("P1 P2 P3 P5 P6 P8", "scripts.bench.bench_badge"),
    ("P4", "scripts.bench.bench_checkin"),
    ("P7", "scripts.bench.bench_reminders"),
)


def main() -> int:
    failed = []
    for bars, module in BENCHES:
        print(f"\n=== {bars}: python -m {module} ===", flush=True)
        if subprocess.run([sys.executable, "-m", module]).returncode != 0:
            failed.append(bars)
    print("\n未达标：" + "、".join(failed) if failed else "\n全部速度指标达标。")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
