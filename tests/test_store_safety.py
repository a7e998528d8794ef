"""The candle store under crashes and concurrent writers, as processes really crash: SIGKILL at random moments of
a merge-write leaves either the old or the new dataset, readable and verified, never a mix or nothing; two writers
at once both land (the per-dataset lock serialises their read-merge-write, so neither clobbers the other)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tradelab.data import read_ohlcv_file
from tradelab.datastore import CandleStore

TRADELAB = str(Path(sys.executable).parent / "tradelab")
TEST_DATA = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
LONG = TEST_DATA / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"  # 2017-08 .. 2024-04
RECENT = TEST_DATA / "ohlcv/binance-spot-2024/BTC_USDT-1h.feather"  # 2024-01 .. 2024-09

WRITER = """
import sys
from tradelab.data import read_ohlcv_file
from tradelab.datastore import CandleStore
store = CandleStore(sys.argv[1])
df = read_ohlcv_file(sys.argv[2])
print("ready", flush=True)
for k in range(10_000):                      # merge ever-growing slices: every write changes the file
    store.write(df.iloc[: 1000 + 50 * k], "binance", "BTC/USDT", "1h", "test")
"""


def test_sigkill_during_writes_leaves_a_readable_dataset(tmp_path):
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    full = read_ohlcv_file(LONG)
    store = CandleStore(tmp_path)
    for i in range(6):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(LONG)], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))  # lands anywhere: in a merge, a Parquet write, between renames
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        if not store.exists("binance", "BTC/USDT", "1h"):
            continue
        df = store.read("binance", "BTC/USDT", "1h")  # verified against its content hash
        pd.testing.assert_frame_equal(df, full.iloc[: len(df)], check_freq=False, obj=f"seed {seed}, kill {i}")
        meta = store.meta("binance", "BTC/USDT", "1h")
        assert meta["rows"] == len(df), f"seed {seed}: the sidecar disagrees with the file"
    assert store.exists("binance", "BTC/USDT", "1h"), f"seed {seed}: no write ever completed"
    store.write(full, "binance", "BTC/USDT", "1h", "test")  # the next write clears killed writers' temp files
    folder = store.path("binance", "BTC/USDT", "1h").parent
    assert sorted(p.name for p in folder.iterdir()) == ["1h.json", "1h.lock", "1h.parquet"]


def test_two_writers_at_once_keep_both_sets_of_bars(tmp_path):
    env = {**os.environ, "TRADELAB_DATA_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [TRADELAB, "data", "import", str(f), "-e", "binance"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in (LONG, RECENT)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    union = read_ohlcv_file(LONG).index.union(read_ohlcv_file(RECENT).index)
    stored = CandleStore(tmp_path).read("binance", "BTC/USDT", "1h")
    assert stored.index.equals(union)
    assert all("bars added" in o for o, _ in outs)


def test_files_honour_the_umask(tmp_path):
    env = {**os.environ, "TRADELAB_DATA_DIR": str(tmp_path)}
    for mask, mode in ((0o022, 0o644), (0o002, 0o664)):
        r = subprocess.run(
            [TRADELAB, "data", "import", str(RECENT), "-e", f"ex{mask:o}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda m=mask: os.umask(m),
        )
        assert r.returncode == 0, r.stderr
        for name in ("1h.parquet", "1h.json"):
            got = (tmp_path / f"ex{mask:o}" / "BTC_USDT" / name).stat().st_mode & 0o777
            assert got == mode, (name, oct(got), oct(mode))
