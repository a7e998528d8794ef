"""The installed `tradelab` console script, run as a user runs it (a subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TRADELAB = str(BIN / "tradelab")


def run(*args, env=None, timeout=120):
    e = {**os.environ, **(env or {})}
    return subprocess.run([TRADELAB, *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_help_lists_the_commands():
    r = run("--help")  # its speed is measured in benchmarks/bench_startup.py
    assert r.returncode == 0, r.stderr
    assert "config" in r.stdout and "demo" in r.stdout and "run" in r.stdout


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("tradelab ")


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    r = run("config", "check", env={"TRADELAB_HEALTH_PORT": "eighty", "TRADELAB_CCXT_SECRET": "zz-top-secret"})
    assert r.returncode == 2
    assert "TRADELAB_HEALTH_PORT" in r.stderr and "eighty" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and "zz-top-secret" not in r.stderr + r.stdout


def test_live_mode_needs_confirmation():
    r = run("config", "check", env={"TRADELAB_MODE": "live"})
    assert r.returncode == 2 and "TRADELAB_LIVE_CONFIRM" in r.stderr


def test_unknown_command_exits_2():
    assert run("nope").returncode == 2


@pytest.mark.skipif(not os.environ.get("TRADELAB_SAMPLE_DIR"), reason="TRADELAB_SAMPLE_DIR not set")
def test_demo_prints_real_stats(tmp_path):
    r = run("demo", "--no-download", env={"TRADELAB_DATA_DIR": str(tmp_path), "COLUMNS": "80"}, timeout=300)
    assert r.returncode == 0, r.stderr
    for word in ("Total return", "Buy & hold return", "Sharpe ratio", "Max drawdown", "Closed trades", "BTC/USDT"):
        assert word in r.stdout
    assert "SYNTHETIC" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80  # fits an 80-column terminal
    assert "sma_cross(fast=10, slow=50) on BTC/USDT 1h, fees 0.10%" in r.stdout  # the title on one line
    assert list(tmp_path.iterdir()) == []  # read from the sample dir, wrote nothing


@pytest.mark.skipif(not os.environ.get("TRADELAB_TEST_DATA"), reason="TRADELAB_TEST_DATA not set")
def test_your_strategy_file_in_the_cli_and_tables_at_80_columns(tmp_path):
    from tradelab.datastore import CandleStore, import_file

    shared = Path(os.environ["TRADELAB_TEST_DATA"])
    import_file(shared / "ohlcv/binance-spot-2024/BTC_USDT-4h.feather", "binance", store=CandleStore(tmp_path / "d"))
    (tmp_path / "mine.py").write_text(
        "from tradelab.strategies import Signals, register\n\n\n"
        "@register('channel_breakout')\n"
        "def channel_breakout(ohlcv, entry: int = 20, exit: int = 10):\n"
        "    high = ohlcv.high.rolling(entry).max().shift(1)\n"
        "    low = ohlcv.low.rolling(exit).min().shift(1)\n"
        "    return Signals(ohlcv.close > high, ohlcv.close < low)\n"
    )
    env = {
        "TRADELAB_DATA_DIR": str(tmp_path / "d"),
        "TRADELAB_STRATEGY_FILES": str(tmp_path / "mine.py"),
        "COLUMNS": "80",
    }
    r = run("backtest", "-s", "BTC/USDT", "-t", "4h", "--strategy", "channel_breakout", "-p", "entry=30", env=env)
    assert r.returncode == 0, r.stderr
    assert "channel_breakout(entry=30, exit=10)" in r.stdout and "Closed trades" in r.stdout
    r = run("sweep", "-s", "BTC/USDT", "-t", "4h", "--strategy", "channel_breakout", "-g", "entry=10:40:10",
            "-g", "exit=5,10", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in r.stdout
    assert "entry" in r.stdout and "exit" in r.stdout and "not shown at 80 columns" in r.stdout
    r = run("backtest", "-s", "BTC/USDT", "-t", "4h", "--strategy", "nope", env=env)
    assert r.returncode == 2 and "TRADELAB_STRATEGY_FILES" in r.stderr and "Traceback" not in r.stderr
