"""Start-up cost of the everyday entry points, measured side by side in one run (new processes each time).

`tradelab --help` and `import tradelab` should feel instant; `python -c pass` is the floor they are compared with.
These numbers used to be pass/fail thresholds in the test suite; on a busy machine that only measured the load,
so they live here. Run: .venv/bin/python benchmarks/bench_startup.py
"""

import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from timing import timed

BIN = Path(sys.executable).parent


def main():
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "import tradelab": [sys.executable, "-c", "import tradelab"],
        "tradelab --help": [str(BIN / "tradelab"), "--help"],
        "tradelab config check": [str(BIN / "tradelab"), "config", "check"],
        "import tradelab.runner": [sys.executable, "-c", "import tradelab.runner"],
    }
    floor = None
    t = Table(title="start-up, median of 7 new processes")
    for c in ("command", "seconds", "x floor"):
        t.add_column(c, justify="right")
    for name, cmd in cases.items():
        s = timed(lambda cmd=cmd: subprocess.run(cmd, capture_output=True, check=True))
        floor = floor or s
        t.add_row(name, f"{s:.3f}", f"{s / floor:.1f}")
    Console().print(t)


if __name__ == "__main__":
    main()
