"""A replay of the same strategy through each broker, side by side in one run: the paper broker (in the state
database), the ccxt broker against the Binance simulator and the Alpaca broker against the Alpaca simulator, each a
new `tradelab run` process over the same bars. What a rehearsal through a venue-faithful simulator costs compared
with paper trading, and how many venue requests each bar takes.

Run: TRADELAB_TEST_DATA=../shared/data .venv/bin/python benchmarks/bench_venues.py
"""

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from tradelab.ohlcv import read_ohlcv_file
from tradelab.sim_alpaca import AlpacaSimulator, synthetic_stock_bars
from tradelab.sim_binance import BinanceSimulator

BIN = Path(sys.executable).parent / "tradelab"
DATA = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
START, END = "2023-05-01", "2023-06-15"


def run(args: list, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([str(BIN), *args], env={**os.environ, **env}, capture_output=True, check=True)
    return time.perf_counter() - t


def main():
    d = tempfile.mkdtemp(prefix="bench-venues-")
    env = {"TRADELAB_DATA_DIR": d}
    btc = DATA / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"
    subprocess.run([str(BIN), "data", "import", str(btc), "-e", "binance"], env={**os.environ, **env}, check=True)
    stocks = synthetic_stock_bars("2021-01-04", "2023-12-29", seed=3)
    stocks.index.name = "date"
    stocks.reset_index().to_feather(f"{d}/AAPL-1d.feather")
    cmd = [str(BIN), "data", "import", f"{d}/AAPL-1d.feather", "-e", "alpaca", "-s", "AAPL", "-t", "1d"]
    subprocess.run(cmd, env={**os.environ, **env}, check=True)
    common = ["run", "--strategy", "sma_cross", "-p", "fast=5", "-p", "slow=20", "--health-port", "-1"]
    crypto = [*common, "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--start", START, "--end", END]
    stock = [*common, "-e", "alpaca", "-s", "AAPL", "-t", "1d", "--start", "2021-06-01", "--end", "2023-12-29"]
    bars = read_ohlcv_file(str(btc))
    bars = bars[bars.index < pd.Timestamp(END, tz="UTC")]
    n_crypto = len(pd.date_range(START, END, freq="1h", inclusive="left"))
    n_stock = int(((stocks.index >= pd.Timestamp("2021-06-01", tz="UTC")) & (stocks.index < "2023-12-29")).sum())
    rows = []
    rows.append(("paper, BTC/USDT 1h", n_crypto, run([*crypto, "--db", f"sqlite:///{d}/p.db"], env), None))
    with BinanceSimulator({"BTC/USDT": bars}, start=START) as sim:
        keys = {"TRADELAB_CCXT_API_URL": sim.url, "TRADELAB_CCXT_API_KEY": sim.key, "TRADELAB_CCXT_SECRET": sim.secret}
        s = run([*crypto, "--db", f"sqlite:///{d}/c.db", "--broker", "ccxt"], {**env, **keys})
        rows.append(("ccxt on the Binance simulator", n_crypto, s, Counter(c[1] for c in sim.calls)))
    rows.append(("paper, AAPL 1d", n_stock, run([*stock, "--db", f"sqlite:///{d}/ps.db"], env), None))
    with AlpacaSimulator({"AAPL": stocks}, start="2021-06-01") as sim:
        keys = {
            "TRADELAB_ALPACA_TRADING_URL": sim.url,
            "TRADELAB_ALPACA_API_KEY": sim.key,
            "TRADELAB_ALPACA_SECRET_KEY": sim.secret,
        }
        s = run([*stock, "--db", f"sqlite:///{d}/a.db", "--broker", "alpaca"], {**env, **keys})
        rows.append(("alpaca on the Alpaca simulator", n_stock, s, Counter(c[1] for c in sim.calls)))
    t = Table(title="one replay per broker, new process each (start-up included)")
    for c in ("broker", "bars", "seconds", "ms per bar", "x paper", "venue requests per bar"):
        t.add_column(c, justify="right")
    paper = {}
    for name, n, s, calls in rows:
        base = paper.setdefault(n, s)
        venue = "" if calls is None else f"{sum(v for k, v in calls.items() if not k.startswith('/sim/')) / n:.2f}"
        t.add_row(name, f"{n:,}", f"{s:.1f}", f"{s / n * 1e3:.1f}", f"{s / base:.1f}", venue)
    Console().print(t)


if __name__ == "__main__":
    main()
