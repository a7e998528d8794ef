"""Scale-out under faults: a Dask worker process SIGKILLed in the middle of a distributed sweep loses nothing (the table
equals the in-process one); a work unit that keeps failing leaves every finished unit on disk, and the re-run computes
only what is missing; `tradelab optimize` SIGKILLed in the middle of a study continues the same study when started
again, keeping every trial it had."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest
from test_runner import BTC_1H, TRADELAB, cli

from tradelab.config import TradelabError
from tradelab.distribute import distributed_sweep
from tradelab.ohlcv import read_ohlcv_file
from tradelab.strategies import Strategy, get_strategy, sma_cross
from tradelab.sweep import sweep

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
BTC = read_ohlcv_file(BTC_1H).iloc[-20_000:]
GRID = {"fast": list(range(5, 65, 5)), "slow": list(range(70, 170, 10))}  # 120 combinations


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


def test_a_worker_killed_mid_sweep_loses_nothing(client, tmp_path):
    client.wait_for_workers(2)
    expected = sweep(BTC, "sma_cross", GRID, engine="backtest", progress=False)
    outcome = {}

    def job():
        outcome["table"] = distributed_sweep(
            BTC, "sma_cross", GRID, engine="backtest", client=client, results_dir=tmp_path, chunk=6, progress=False
        )

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 300
    while not list(tmp_path.rglob("*.npy")) and time.monotonic() < deadline:
        time.sleep(0.02)
    finished_at_kill = len(list(tmp_path.rglob("*.npy")))
    assert 0 < finished_at_kill < 20, finished_at_kill  # the kill lands in the middle of the job
    victim = next(iter(client.run(os.getpid).values()))
    os.kill(victim, signal.SIGKILL)
    worker.join(600)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker process
    table = outcome["table"]
    pd.testing.assert_frame_equal(pd.DataFrame(table), pd.DataFrame(expected), check_exact=True)
    assert table.attrs["units"] == 20 == len(list(tmp_path.rglob("*.npy")))


def flaky_cross(flag: Path):
    "sma_cross, failing for fast=25 while the file `flag` exists."

    def signals(ohlcv, fast=10, slow=50, short=False):
        if fast == 25 and flag.exists():
            raise RuntimeError("flaky data source")
        return sma_cross(ohlcv, fast, slow, short)

    return signals


def test_a_failing_unit_keeps_the_others_and_the_rerun_continues(client, tmp_path):
    flag = tmp_path / "flag"
    flag.touch()
    client.wait_for_workers(2)
    flaky = Strategy("flaky_cross", flaky_cross(flag), get_strategy("sma_cross").params_model)
    small = {"fast": [5, 15, 25, 35], "slow": [70, 90]}  # four units of two combinations: one fails
    with pytest.raises(TradelabError) as e:
        distributed_sweep(BTC, flaky, small, client=client, results_dir=tmp_path / "r", chunk=2, progress=False)
    message = str(e.value)
    assert "1 of 4 work units failed" in message and "flaky data source" in message, message
    assert "a re-run continues from there" in message and "combinations 4..5" in message, message
    assert len(list((tmp_path / "r").rglob("*.npy"))) == 3
    flag.unlink()
    table = distributed_sweep(BTC, flaky, small, client=client, results_dir=tmp_path / "r", chunk=2, progress=False)
    assert (table.attrs["units"], table.attrs["reused_units"]) == (4, 3)
    expected = sweep(BTC, "sma_cross", small, progress=False, engine="backtest")
    pd.testing.assert_frame_equal(pd.DataFrame(table), pd.DataFrame(expected), check_exact=True)


def study_state(url: str, name: str):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except Exception:  # not created yet
        return []


def test_optimize_killed_with_sigkill_continues_the_same_study():
    import optuna

    d = tempfile.mkdtemp(prefix="tl-optimize-")
    env = {"TRADELAB_DATA_DIR": d}
    cli("data", "import", str(BTC_1H), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h", env=env)
    args = ["optimize", "-s", "BTC/USDT", "-t", "1h", "--strategy", "sma_cross", "--start", "2022-01-01",
            "-g", "fast=5:60:1", "-g", "slow=61:250:1", "-n", "150", "--sampler", "random", "--seed", "7",
            "--pruner", "none", "--json"]  # fmt: skip
    url, name = f"sqlite:///{d}/tradelab-studies.db", "sma_cross-BTC_USDT-1h-sharpe"
    proc = subprocess.Popen(
        [TRADELAB, *args], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(t.state.name == "COMPLETE" for t in study_state(url, name)) >= 20:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the first run ended before the kill: make its study larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.state.name, t.params, t.value) for t in study_state(url, name)}
    finished_before = {k: v for k, v in before.items() if v[0] == "COMPLETE"}
    assert 20 <= len(finished_before) < 150
    out = cli(*args, env=env).stdout
    import json

    doc = json.loads(out)
    after = {t.number: (t.state.name, t.params, t.value) for t in study_state(url, name)}
    for number, trial in finished_before.items():  # every finished trial kept as it was
        assert after[number] == trial
    counted = sum(s in ("COMPLETE", "PRUNED") for s, _, _ in after.values())
    assert counted == doc["states"]["COMPLETE"] == 150
    assert doc["ran"] == 150 - len(finished_before)
    assert len(optuna.get_all_study_names(url)) == 1  # the same study, not a new one
    # the trial killed in flight stays RUNNING until its heart-beat is 60 s stale; then the next run fails it and
    # retries its parameters
    assert sum(s == "RUNNING" for s, _, _ in after.values()) <= 1
