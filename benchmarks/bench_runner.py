"""Live-runner decision latency: signal on the trailing window + risk + the database write, per bar.

Replays 3,000 bars of BTC/USDT 1h (the shared data, or synthetic bars) through the paper broker into a fresh SQLite
state database for each built-in strategy and prints p50/p99/max decision latency (target p99 <= 5 ms) and the
whole per-bar cost (broker, reconciliation, order) side by side.
Run: .venv/bin/python benchmarks/bench_runner.py
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tradelab.brokers import PaperBroker
from tradelab.data import read_ohlcv_file, synthetic_ohlcv
from tradelab.feeds import ReplayFeed
from tradelab.runner import Runner, RunSpec
from tradelab.store import open_store


def main():
    f = (
        Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
        / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"
    )
    bars = read_ohlcv_file(f).iloc[-3000:] if f.exists() else synthetic_ohlcv(3000, "1h", seed=0)
    t = Table(title=f"runner decision latency, {len(bars):,} bars, paper broker, SQLite (target p99 <= 5 ms)")
    for c in ("strategy", "p50 ms", "p99 ms", "max ms", "per bar ms (all)", "fills"):
        t.add_column(c, justify="right")
    for name, params in (
        ("sma_cross", {"fast": 10, "slow": 50}),
        ("rsi_mean_reversion", {}),
        ("bollinger_breakout", {}),
    ):
        spec = RunSpec(name, "binance", "BTC/USDT", "1h", params, start=str(bars.index[0]))
        store = open_store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
        r = Runner(spec, store, PaperBroker(store, spec.run_id, spec.cash, spec.costs), ReplayFeed(bars, "1h"))
        t0 = time.perf_counter()
        r.run()
        wall = time.perf_counter() - t0
        lat = np.array(r.latencies[1:]) * 1e3
        t.add_row(
            name,
            f"{np.percentile(lat, 50):.2f}",
            f"{np.percentile(lat, 99):.2f}",
            f"{lat.max():.2f}",
            f"{wall / len(bars) * 1e3:.2f}",
            str(len(store.table("fills"))),
        )
    Console().print(t)


if __name__ == "__main__":
    main()
