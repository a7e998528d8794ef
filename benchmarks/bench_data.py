"""Data layer speed: one year of 1m bars (525,600 rows).

Targets (issue 3): load from the store <= 100 ms, validate <= 200 ms. Prints a table of medians over
repeated runs, measured side by side in this one process. Run: .venv/bin/python benchmarks/bench_data.py
"""

import tempfile

import pandas as pd
from rich.console import Console
from rich.table import Table
from timing import timed

from tradelab.data import read_ohlcv_file, resample, synthetic_ohlcv
from tradelab.datastore import CandleStore
from tradelab.quality import validate


def main():
    df = synthetic_ohlcv(525_600, "1m", seed=0, start="2023-01-01")
    with tempfile.TemporaryDirectory() as d:
        store = CandleStore(d)
        rows = [
            (
                "write (atomic, lz4, hashed)",
                timed(lambda: store.write(df, "binance", "BTC/USDT", "1m", "bench"), 3),
                None,
            ),
            ("load from the store (verified)", timed(lambda: store.read("binance", "BTC/USDT", "1m")), 0.100),
            ("load, hash check skipped", timed(lambda: store.read("binance", "BTC/USDT", "1m", verify=False)), None),
            (
                "plain pandas.read_parquet (reference)",
                timed(lambda: pd.read_parquet(store.path("binance", "BTC/USDT", "1m"))),
                None,
            ),
            ("validate", timed(lambda: validate(df, "1m")), 0.200),
            ("resample 1m -> 1h", timed(lambda: resample(df, "1h")), None),
        ]
        f = df.reset_index()
        f.to_feather(f"{d}/x.feather")
        rows.append(("read a freqtrade feather file", timed(lambda: read_ohlcv_file(f"{d}/x.feather")), None))
    t = Table(title="data layer on 525,600 1m bars (median)")
    for c in ("operation", "ms", "target ms", "ok"):
        t.add_column(c, justify="right" if c != "operation" else "left")
    for name, sec, target in rows:
        ok = "" if target is None else ("yes" if sec <= target else "NO")
        t.add_row(name, f"{sec * 1000:.1f}", "" if target is None else f"{target * 1000:.0f}", ok)
    Console().print(t)


if __name__ == "__main__":
    main()
