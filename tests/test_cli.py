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
    r = run("demo", "--no-download", env={"TRADELAB_DATA_DIR": str(tmp_path)}, timeout=300)
    assert r.returncode == 0, r.stderr
    for word in ("total_return", "sharpe", "max_drawdown", "trades", "BTC/USDT"):
        assert word in r.stdout
    assert "SYNTHETIC" not in r.stdout
    assert list(tmp_path.iterdir()) == []  # read from the sample dir, wrote nothing
