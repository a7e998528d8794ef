"""`tradelab data ...` as a user runs it: the real CLI process, the real ccxt and alpaca-py clients,
talking HTTP to fake exchanges on 127.0.0.1 (TRADELAB_CCXT_API_URL / TRADELAB_ALPACA_DATA_URL)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tradelab.data import synthetic_ohlcv
from tradelab.datastore import CandleStore
from tradelab.fakes import FakeAlpaca, FakeBinance

TRADELAB = str(Path(sys.executable).parent / "tradelab")
NOW = pd.Timestamp.now(tz="UTC").floor("h")
HIST = synthetic_ohlcv(3000, "1h", seed=21, start=NOW - pd.Timedelta(hours=2999))  # the last bar is still open


def run(*args, env):
    r = subprocess.run([TRADELAB, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def binance():
    with FakeBinance({"BTC/USDT": HIST, "ETH/USDT": HIST}) as fake:
        yield fake


def test_fetch_then_update_requests_only_new_bars(tmp_path, binance):
    env = {"TRADELAB_DATA_DIR": str(tmp_path), "TRADELAB_CCXT_API_URL": binance.url}
    r = run(
        "data",
        "fetch",
        "-e",
        "binance",
        "-s",
        "BTC/USDT",
        "-t",
        "1h",
        "--start",
        str(HIST.index[0]),
        "--end",
        str(HIST.index[2500]),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert len(binance.data_requests("/klines")) == 3  # 2,500 bars in pages of 1,000
    stored = CandleStore(tmp_path).read("binance", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(stored, HIST.iloc[:2500].round(8), check_freq=False)

    binance.requests.clear()
    r = run("data", "update", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", env=env)
    assert r.returncode == 0, r.stderr
    # up to the last closed bar (the open one is never stored); the clock may pass the hour during the test
    closed = HIST.index[HIST.index + pd.Timedelta(hours=1) <= pd.Timestamp.now(tz="UTC")]
    new = len(closed) - 2500
    assert f"{new} bars added, 0 replaced" in r.stdout and new in (499, 500), r.stdout
    kl = binance.data_requests("/klines")
    assert (
        len(kl) == (1 if new == 499 else len(kl)) and len(kl) <= 2
    )  # a second, empty page only if the hour rolled over
    assert int(kl[0][1]["startTime"]) == int(HIST.index[2497].timestamp() * 1000)
    assert CandleStore(tmp_path).read("binance", "BTC/USDT", "1h").index[-1] == closed[-1]


def test_rate_limit_and_server_errors_are_retried(tmp_path, binance):
    env = {"TRADELAB_DATA_DIR": str(tmp_path), "TRADELAB_CCXT_API_URL": binance.url}
    binance.inject("429", "502")
    r = run("data", "fetch", "-s", "ETH/USDT", "--start", str(HIST.index[0]), "--end", str(HIST.index[240]), env=env)
    assert r.returncode == 0, r.stderr
    assert len(CandleStore(tmp_path).read("binance", "ETH/USDT", "1h")) == 240
    assert len(binance.data_requests("/klines")) == 3  # two failures, then the page


def test_malformed_answer_is_a_clear_error_and_stores_nothing(tmp_path, binance):
    env = {"TRADELAB_DATA_DIR": str(tmp_path), "TRADELAB_CCXT_API_URL": binance.url}
    binance.inject("malformed")
    r = run("data", "fetch", "-s", "ETH/USDT", "--start", str(HIST.index[0]), env=env)
    assert r.returncode == 1 and "malformed answer" in r.stderr
    assert not list(tmp_path.rglob("*.parquet"))


def test_bad_symbol_and_timeframe_exit_2(tmp_path, binance):
    env = {"TRADELAB_DATA_DIR": str(tmp_path), "TRADELAB_CCXT_API_URL": binance.url}
    r = run("data", "fetch", "-s", "ETH/USTD", env=env)
    assert r.returncode == 2 and "did you mean ETH/USDT" in r.stderr
    r = run("data", "fetch", "-s", "ETH/USDT", "-t", "2m", env=env)
    assert r.returncode == 2 and "no '2m' candles" in r.stderr


def test_alpaca_stock_bars_and_missing_keys(tmp_path):
    bars = synthetic_ohlcv(700, "1h", seed=3, start="2024-02-01", price=190)
    with FakeAlpaca({"AAPL": bars}, page_size=250, key="AK123", secret="SK-very-secret") as fake:
        env = {
            "TRADELAB_DATA_DIR": str(tmp_path),
            "TRADELAB_ALPACA_DATA_URL": fake.url,
            "TRADELAB_ALPACA_API_KEY": "AK123",
            "TRADELAB_ALPACA_SECRET_KEY": "SK-very-secret",
        }
        r = run("data", "fetch", "-e", "alpaca", "-s", "AAPL", "-t", "1h", "--start", "2024-02-01", env=env)
        assert r.returncode == 0, r.stderr
        assert len(fake.data_requests("/stocks/bars")) == 3
        assert len(CandleStore(tmp_path).read("alpaca", "AAPL", "1h")) == 700
        assert "SK-very-secret" not in r.stdout + r.stderr
        r = run(
            "data",
            "fetch",
            "-e",
            "alpaca",
            "-s",
            "AAPL",
            "-t",
            "1h",
            env={**env, "TRADELAB_ALPACA_API_KEY": "", "TRADELAB_ALPACA_SECRET_KEY": ""},
        )
        assert r.returncode == 2 and "TRADELAB_ALPACA_API_KEY" in r.stderr


def test_validate_json_on_a_file(tmp_path):
    df = HIST.drop(HIST.index[100:105])
    p = tmp_path / "X_USDT-1h.csv"
    df.reset_index().to_csv(p, index=False)
    r = run("data", "validate", "--file", str(p), "--json", env={"TRADELAB_DATA_DIR": str(tmp_path)})
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["missing_bars"] == 5 and rep["gaps"][0]["missing_bars"] == 5
