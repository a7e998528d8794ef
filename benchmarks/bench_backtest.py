"""Backtest and sweep speed, measured side by side in one run.

W1: one backtest on 525,600 1m bars (sma_cross 10/50, 0.1% fee): tradelab.backtest (warm) against the raw
    vectorbt call on the same arrays (signals precomputed, shifted to the next open), with backtesting.py
    timed beside them. Target: tradelab <= 1.2x raw vectorbt.
W2: a ~10,000-combination sma_cross grid on the same bars with the fused kernel. Target: <= 30 s wall and
    <= 2 GB peak RSS (aim: 6 s, 0.5 GB).
Run: .venv/bin/python benchmarks/bench_backtest.py [--skip-w2] [--skip-btpy]
"""

import os
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from timing import timed

from tradelab.backtest import Costs, backtest
from tradelab.data import synthetic_ohlcv
from tradelab.strategies import get_strategy
from tradelab.sweep import expand_grid, sweep


def interleaved(a, b, rounds: int = 15) -> tuple[float, float]:
    "Best-of-`rounds` seconds of a and b, run alternately so machine noise hits both alike (timeit: take the minimum)."
    a()
    b()
    ta, tb = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t)
    return min(ta), min(tb)


def main():
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
    warnings.filterwarnings("ignore")  # backtesting.py's 'insufficient margin' notes on a 1e12 account
    import vectorbt as vbt

    console = Console()
    df = synthetic_ohlcv(525_600, "1m", seed=0, start="2023-01-01")
    naive = df.index.tz_convert(None)
    sig = get_strategy("sma_cross").signals(df, fast=10, slow=50)
    entries = pd.Series(np.r_[False, sig.entries.to_numpy()[:-1]], index=naive)
    exits = pd.Series(np.r_[False, sig.exits.to_numpy()[:-1]], index=naive)
    close, open_ = pd.Series(df.close.to_numpy(), index=naive), pd.Series(df.open.to_numpy(), index=naive)

    def raw():
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=0.001, init_cash=10_000.0, freq="1min")
        return pf.total_return()

    rows = []
    ours = lambda: backtest(df, "sma_cross", {"fast": 10, "slow": 50}, Costs(0.001), timeframe="1m")
    t_raw, t_ours = interleaved(raw, ours)
    rows += [
        ("W1 raw vectorbt from_signals + total_return", t_raw, "1.00x"),
        ("W1 tradelab.backtest (signals, fills, 13 stats, trades)", t_ours, f"{t_ours / t_raw:.2f}x (target <= 1.2x)"),
    ]
    if "--skip-btpy" not in sys.argv:
        from backtesting import Backtest, Strategy

        class SmaCross(Strategy):
            def init(self):
                self.e, self.x = self.I(lambda: sig.entries.to_numpy()), self.I(lambda: sig.exits.to_numpy())

            def next(self):
                if not self.position and self.e[-1]:
                    self.buy()
                elif self.position and self.x[-1]:
                    self.position.close()

        data = df.rename(columns=str.capitalize).set_axis(naive)
        bt = Backtest(data, SmaCross, cash=1e12, commission=0.001, finalize_trades=True)
        t_bt = timed(lambda: bt.run(), repeat=1)
        rows.append(("W1 backtesting.py (same signals)", t_bt, f"{t_bt / t_raw:.1f}x"))
    if "--skip-w2" not in sys.argv:
        grid = {"fast": list(range(2, 202, 2)), "slow": list(range(10, 1010, 10))}
        n = len(expand_grid("sma_cross", grid))
        sweep(df.iloc[:2000], "sma_cross", {"fast": [5], "slow": [20]}, progress=False)
        t = time.perf_counter()
        res = sweep(df, "sma_cross", grid, costs=Costs(0.001), progress=False)
        t_w2 = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rate = n * len(df) / t_w2 / 1e6
        rows.append(
            (
                f"W2 sweep {n:,} combos x {len(df):,} bars (fused, 2 threads)",
                t_w2,
                f"{rate:,.0f}M bar-updates/s; peak RSS {rss:,.0f} MB (targets 30 s, 2 GB)",
            )
        )
        assert len(res) == n
    t = Table(title="backtest speed on 525,600 1m bars (seconds; W1 best of 15 alternating runs)")
    for c in ("case", "seconds", "ratio / notes"):
        t.add_column(c)
    for name, sec, note in rows:
        t.add_row(name, f"{sec:.3f}", note)
    console.print(t)


if __name__ == "__main__":
    main()
