"""Validation speed: walk-forward with the fused sweep kernels, and the Monte Carlo bootstrap.

- a walk-forward of 12 folds x ~1,000 sma_cross combinations on a year of 1m bars (train 60 days, test 25 days);
- 10,000 bootstrap simulations of a 1,000-trade history (target: under 1 s).
Run: .venv/bin/python benchmarks/bench_validation.py
"""

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from tradelab.data import synthetic_ohlcv
from tradelab.sweep import expand_grid, sweep
from tradelab.validation import monte_carlo, walk_forward


def main():
    df = synthetic_ohlcv(525_600, "1m", seed=0, start="2023-01-01")
    grid = {"fast": list(range(2, 82, 2)), "slow": list(range(20, 520, 20))}
    n = len(expand_grid("sma_cross", grid))
    sweep(df.iloc[:3000], "sma_cross", {"fast": [5], "slow": [20]}, progress=False)  # load kernels
    t = time.perf_counter()
    wf = walk_forward(df, "sma_cross", grid, train="60d", test="25d")
    t_wf = time.perf_counter() - t
    trades = np.random.default_rng(0).normal(0.001, 0.02, 1000)
    monte_carlo(trades, 10)
    t = time.perf_counter()
    monte_carlo(trades, 10_000, seed=1)
    t_mc = time.perf_counter() - t
    table = Table(title="validation speed")
    for c in ("case", "seconds", "notes"):
        table.add_column(c)
    table.add_row(
        f"walk-forward {len(wf.folds)} folds x {n:,} combos, 525,600 1m bars",
        f"{t_wf:.2f}",
        f"{len(wf.folds) * n:,} backtests (fused kernels) + {len(wf.folds)} out-of-sample runs",
    )
    table.add_row("Monte Carlo 10,000 x 1,000-trade bootstrap", f"{t_mc:.3f}", "target < 1 s")
    Console().print(table)


if __name__ == "__main__":
    main()
