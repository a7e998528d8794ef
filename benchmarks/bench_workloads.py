"""The speed issue's workloads, each in a process of its own so its peak memory is its own: wall seconds and peak
RSS per workload, with the references beside them (raw vectorbt on the same arrays; a bare interpreter for start-up).

W0  `tradelab backtest` on 58k BTC/USDT 1h bars, a new process end to end
W1  one warm backtest on 525,600 1m bars (sma_cross 10/50, 0.1% fees) - and raw vectorbt and backtesting.py
    on the same signals
W2  an sma_cross grid of about 9,000 combinations on those bars, in-process with the kernels loaded (as W1) -
    and `tradelab sweep` end to end in a new process
    (on the 58k 1h bars and on those 1m bars, stored as SYN/USDT)
W3  walk-forward on those bars (90-day train, 30-day test windows, ~900 combinations per fold)
W7  `tradelab --help`, `tradelab config check`, `import tradelab` and `import tradelab.backtest` - and `python -c pass`
    and `import pandas` (what the backtest cannot do without)
Run: .venv/bin/python benchmarks/bench_workloads.py   (needs TRADELAB_TEST_DATA or ../shared/data for W0)
     .venv/bin/python benchmarks/bench_workloads.py W1 W7   (only those workloads)
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

PY = sys.executable
BIN = Path(PY).parent
SHARED = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[1] / "../shared/data")).resolve()

# the code every in-process workload runs: the bars, and a report of its own peak memory at the end
SETUP = """
import json, resource, statistics, time
from tradelab.data import synthetic_ohlcv
bars = synthetic_ohlcv(525_600, "1m", seed=0, start="2023-01-01")
def report(seconds, **extra):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, **extra}))
def median_of(fn, n=5):
    fn()
    runs = []
    for _ in range(n):
        t = time.perf_counter(); fn(); runs.append(time.perf_counter() - t)
    return statistics.median(runs)
"""

WORKLOADS = {
    "W1 backtest, warm (tradelab)": """
from tradelab.backtest import Costs, backtest
report(median_of(lambda: backtest(bars, "sma_cross", {"fast": 10, "slow": 50}, Costs(0.001)), n=21))
""",
    "W1 reference: raw vectorbt": """
import numpy as np, pandas as pd, vectorbt as vbt
from tradelab.strategies import get_strategy
naive = bars.index.tz_convert(None)
sig = get_strategy("sma_cross").signals(bars, fast=10, slow=50)
e = pd.Series(np.r_[False, sig.entries.to_numpy()[:-1]], index=naive)
x = pd.Series(np.r_[False, sig.exits.to_numpy()[:-1]], index=naive)
c, o = pd.Series(bars.close.to_numpy(), index=naive), pd.Series(bars.open.to_numpy(), index=naive)
run = lambda: vbt.Portfolio.from_signals(c, e, x, price=o, fees=0.001, init_cash=1e4, freq="1min").total_return()
report(median_of(run, n=21))
""",
    "W1 reference: backtesting.py": """
import os, warnings
os.environ["TQDM_DISABLE"] = "1"
warnings.filterwarnings("ignore")
from backtesting import Backtest, Strategy
from tradelab.strategies import get_strategy
sig = get_strategy("sma_cross").signals(bars, fast=10, slow=50)
class SmaCross(Strategy):
    def init(self):
        self.e, self.x = self.I(lambda: sig.entries.to_numpy()), self.I(lambda: sig.exits.to_numpy())
    def next(self):
        if not self.position and self.e[-1]:
            self.buy()
        elif self.position and self.x[-1]:
            self.position.close()
data = bars.rename(columns=str.capitalize).set_axis(bars.index.tz_convert(None))
bt = Backtest(data, SmaCross, cash=1e12, commission=0.001, finalize_trades=True)
t = time.perf_counter(); bt.run(); report(time.perf_counter() - t)
""",
    "W2 sweep, ~9,000 combinations": """
from tradelab.sweep import sweep
grid = {"fast": list(range(5, 305, 5)), "slow": list(range(20, 1530, 10))}
sweep(bars.iloc[:2000], "sma_cross", {"fast": [5], "slow": [20]}, progress=False)  # kernels loaded, as in a session
t = time.perf_counter(); table = sweep(bars, "sma_cross", grid, progress=False)
report(time.perf_counter() - t, combinations=len(table))
""",
    "W3 walk-forward": """
from tradelab.validation import walk_forward
grid = {"fast": list(range(5, 185, 5)), "slow": list(range(50, 1350, 50))}
t = time.perf_counter(); wf = walk_forward(bars, "sma_cross", grid, train="90d", test="30d")
report(time.perf_counter() - t, folds=len(wf.folds), combinations=wf.n_trials)
""",
}


def in_process(code: str) -> dict:
    out = subprocess.run([PY, "-c", textwrap.dedent(SETUP + code)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def new_process(args: list[str], env: dict | None = None, repeat: int = 3) -> dict:
    "Median wall seconds of `repeat` runs of a command, and the peak RSS of the largest run (its own process)."
    probe = "import resource, subprocess, sys, time, json\n"
    probe += "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True)\n"
    probe += "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    probe += "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_mb': peak, 'rc': r.returncode}))"
    runs = []
    for _ in range(repeat):
        out = subprocess.run([PY, "-c", probe, *args], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(out.stdout))
    runs.sort(key=lambda r: r["seconds"])
    return {**runs[len(runs) // 2], "peak_mb": max(r["peak_mb"] for r in runs)}


def main(wanted: set[str]):
    "Run the workloads whose ids are in `wanted` (all of them when it is empty) and print their table."

    def want(name: str) -> bool:
        return not wanted or name.split()[0] in wanted

    rows = {}
    sweep_args = ["-g", "fast=5:300:5", "-g", "slow=20:1520:10"]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "TRADELAB_DATA_DIR": d}
        source = SHARED / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"
        if source.exists() and (want("W0") or want("W2")):
            subprocess.run([BIN / "tradelab", "data", "import", str(source), "-e", "binance"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            rows["W0 tradelab backtest, new process"] = new_process(
                [str(BIN / "tradelab"), "backtest", "-s", "BTC/USDT", "-t", "1h", "--strategy", "sma_cross"], env
            )
            rows["W2 tradelab sweep (58k 1h bars, same grid), new process"] = new_process(
                [str(BIN / "tradelab"), "sweep", "-s", "BTC/USDT", "-t", "1h", "--strategy", "sma_cross", *sweep_args],
                env,
                repeat=1,
            )
        if want("W2"):  # the in-process workloads' year of 1m bars, stored as a symbol of its own, swept from the CLI
            year = Path(d) / "SYN_USDT-1m.feather"
            make_year = (
                SETUP.split("def report")[0] + f"bars.rename_axis('date').reset_index().to_feather({str(year)!r})"
            )
            subprocess.run([PY, "-c", make_year], check=True)
            subprocess.run([BIN / "tradelab", "data", "import", str(year), "-e", "binance"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            rows["W2 tradelab sweep (525,600 1m bars, same grid), new process"] = new_process(
                [str(BIN / "tradelab"), "sweep", "-s", "SYN/USDT", "-t", "1m", "--strategy", "sma_cross", *sweep_args],
                env,
                repeat=1,
            )
    for name, code in WORKLOADS.items():
        if want(name):
            rows[name] = in_process(code)
    commands = {
        "W7 tradelab --help": [str(BIN / "tradelab"), "--help"],
        "W7 tradelab config check": [str(BIN / "tradelab"), "config", "check"],
        "W7 import tradelab": [PY, "-c", "import tradelab"],
        "W7 import tradelab.backtest": [PY, "-c", "import tradelab.backtest"],
        "W7 reference: import pandas": [PY, "-c", "import pandas"],
        "W7 reference: python -c pass": [PY, "-c", "pass"],
    }
    for name, args in commands.items():
        if want(name):
            rows[name] = new_process(args, repeat=7)
    t = Table(title="workloads, each in its own process")
    for c in ("workload", "seconds", "peak MB", "notes"):
        t.add_column(c, justify="left" if c in ("workload", "notes") else "right")
    for name, r in rows.items():
        notes = ", ".join(f"{k} {v:,}" for k, v in r.items() if k in ("combinations", "folds"))
        seconds = f"{r['seconds']:.4f}" if r["seconds"] < 0.1 else f"{r['seconds']:.3f}"  # (W1: to a tenth of a ms)
        t.add_row(name, seconds, f"{r['peak_mb']:,.0f}", notes)
    Console(width=120).print(t)
    if want("W1"):
        w1, ref = rows["W1 backtest, warm (tradelab)"], rows["W1 reference: raw vectorbt"]
        print(f"W1 tradelab / raw vectorbt: {w1['seconds'] / ref['seconds']:.2f}x")
        btpy = rows["W1 reference: backtesting.py"]
        print(f"W1 backtesting.py / tradelab: {btpy['seconds'] / w1['seconds']:,.0f}x")


if __name__ == "__main__":
    start = time.perf_counter()
    ids = set(sys.argv[1:])
    known = {"W0", "W1", "W2", "W3", "W7"}
    if ids - known:
        sys.exit(f"unknown workload {', '.join(sorted(ids - known))}; choose from {', '.join(sorted(known))}")
    main(ids)
    print(f"(all workloads: {time.perf_counter() - start:.0f} s)")
