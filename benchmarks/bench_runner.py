"""Live-runner decision latency and replay throughput.

1. Replays 3,000 bars of BTC/USDT 1h (the shared data, or synthetic bars) through the paper broker into a fresh SQLite
   state database for each built-in strategy and prints p50/p99/max decision latency (target p99 <= 5 ms) and the
   whole per-bar cost (broker, reconciliation, order) side by side.
2. Replays the shared 10-symbol 5m panel (shared cash; all eight months, or its first `--panel-bars` bars) and
   backtests the same panel, side by side: seconds, bars/s of each, what a year of 5m bars (105,120) takes at that
   rate (issue 16's target: under a minute for the replay), and whether both give the same fills.
3. With --year: a whole year of 5m bars for 10 symbols (105,120 bars each; seeded random walks, 0.3% a bar, since
   the shared panel holds eight months) replayed and backtested the same way: the target measured, not extrapolated.
Run: .venv/bin/python benchmarks/bench_runner.py [--panel-bars 2000] [--panel-only] [--year]
"""

import argparse
import glob
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tradelab.backtest import backtest
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


def panel(n_bars: int):
    "Replay and backtest of the 10-symbol 5m panel over the same bars, side by side."
    root = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
    files = sorted(glob.glob(str(root / "ohlcv/binance-spot-2024/*_USDT-5m.feather")))
    if not files:
        Console().print("[yellow]the shared 5m panel is not here: panel throughput skipped")
        return
    frames = {Path(f).name.split("-")[0].replace("_", "/"): read_ohlcv_file(f) for f in files}
    side_by_side({s: f.iloc[:n_bars] if n_bars else f for s, f in frames.items()})


def year():
    "A year of 5m bars for 10 symbols (seeded random walks), replayed and backtested."
    frames = {f"S{k}/USDT": synthetic_ohlcv(105_120, "5m", seed=k, start="2023-01-01", vol=0.003) for k in range(10)}
    side_by_side(frames)


def side_by_side(frames: dict):
    "The paper replay and the backtest of one panel: seconds, throughput, and whether the fills are the same."
    n_bars = len(next(iter(frames.values())))
    params = {"fast": 12, "slow": 48}
    spec = RunSpec(
        "sma_cross", "binance", ",".join(frames), "5m", params, start=str(next(iter(frames.values())).index[0])
    )
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
    broker = PaperBroker(store, spec.run_id, spec.cash, spec.costs, spec.cash / len(frames))
    t0 = time.perf_counter()
    Runner(spec, store, broker, ReplayFeed(frames, "5m")).run()
    replay = time.perf_counter() - t0
    backtest(frames, "sma_cross", params, costs=spec.costs)  # compile and cache first: time the run, not numba
    t0 = time.perf_counter()
    result = backtest(frames, "sma_cross", params, costs=spec.costs)
    bt = time.perf_counter() - t0
    t = Table(
        title=f"{len(frames)}-symbol 5m panel, {n_bars:,} bars ({n_bars * len(frames):,} symbol-bars), shared cash"
    )
    for c in ("engine", "seconds", "bars/s", "symbol-bars/s", "a year of 5m bars (105,120) at this rate"):
        t.add_column(c, justify="right")
    for name, secs in (("tradelab run (paper replay, SQLite)", replay), ("tradelab backtest (vectorbt)", bt)):
        rate = n_bars / secs
        t.add_row(name, f"{secs:.2f}", f"{rate:,.0f}", f"{rate * len(frames):,.0f}", f"{105_120 / rate:,.0f} s")
    Console().print(t)
    got = sorted(_fill_rows(store.table("fills")))
    same = got == sorted(_fill_rows(result.fills))
    Console().print(f"replay / backtest: {replay / bt:,.0f}x; fills: {len(got):,}, identical to the backtest's: {same}")


def _fill_rows(fills) -> list[tuple]:
    "(time, symbol, side, price, qty, fee) per fill, rounded past float noise."
    return [(r.time, r.symbol, r.side, *(round(v, 10) for v in (r.price, r.qty, r.fee))) for r in fills.itertuples()]


if __name__ == "__main__":
    logging.getLogger("tradelab").setLevel(logging.ERROR)  # the replays' order warnings are not the benchmark's output
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--panel-bars", type=int, default=0, help="replay only the first N bars (default: all of them, eight months)"
    )
    ap.add_argument("--panel-only", action="store_true")
    ap.add_argument("--year", action="store_true", help="also replay a whole (synthetic) year of 10 symbols")
    a = ap.parse_args()
    if not a.panel_only:
        main()
    panel(a.panel_bars)
    if a.year:
        year()
