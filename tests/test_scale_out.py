"""Scale-out under faults: a Dask worker process SIGKILLed in the middle of a distributed sweep loses nothing (the table
equals the in-process one); a work unit that keeps failing leaves every finished unit on disk, and the re-run computes
only what is missing; `tradelab optimize` SIGKILLed in the middle of a study continues the same study when started
again, keeping every trial it had."""

import json
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

from tradelab.distribute import distributed_sweep
from tradelab.errors import TradelabError
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


def test_candles_lost_with_the_only_worker_holding_them_are_sent_again(tmp_path):
    "One worker holds the only copy of the scattered candles; it is killed: the units run again on fresh copies."
    from distributed import Client, LocalCluster

    expected = sweep(BTC, "sma_cross", GRID, engine="backtest", progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as one:
            one.wait_for_workers(1)
            outcome = {}

            def job():
                outcome["table"] = distributed_sweep(
                    BTC, "sma_cross", GRID, engine="backtest", client=one, results_dir=tmp_path, chunk=12,
                    progress=False,
                )  # fmt: skip

            runner = threading.Thread(target=job)
            runner.start()
            deadline = time.monotonic() + 300
            while not list(tmp_path.rglob("*.npy")) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(list(tmp_path.rglob("*.npy"))) < 10
            victim = next(iter(one.run(os.getpid).values()))
            os.kill(victim, signal.SIGKILL)
            runner.join(600)
    pd.testing.assert_frame_equal(pd.DataFrame(outcome["table"]), pd.DataFrame(expected), check_exact=True)


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def standalone_cluster():
    "A `dask scheduler` and a `dask worker` of two processes, started from the command line as on other machines."
    port = free_port()
    dask = str(Path(sys.executable).parent / "dask")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )  # fmt: skip
    workers = subprocess.Popen(
        [dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
         "--host", "127.0.0.1"], **quiet,
    )  # fmt: skip
    from distributed import Client

    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        for p in (workers, scheduler):
            p.terminate()
            p.wait(30)


def test_a_standalone_cluster_gives_the_in_process_tables(standalone_cluster, tmp_path):
    d = str(tmp_path)
    env = {"TRADELAB_DATA_DIR": d}
    data = Path(BTC_1H).parents[1] / "binance-spot-2024"
    cli("data", "import", str(data), "--exchange", "binance", env=env)
    sweep_args = ["sweep", "-s", "BTC/USDT", "-s", "ETH/USDT", "-t", "1h", "--strategy", "rsi_mean_reversion",
                  "-g", "window=7:21:7", "-g", "lower=20:35:5", "-g", "upper=65:80:5"]  # fmt: skip
    cli(*sweep_args, "--scheduler", "none", "--out", f"{d}/here.csv", env=env)
    r = cli(*sweep_args, "--out", f"{d}/there.csv", env={**env, "TRADELAB_DASK_SCHEDULER": standalone_cluster})
    assert "on 2 Dask workers, 0 reused" in r.stdout, r.stdout
    here, there = pd.read_csv(f"{d}/here.csv"), pd.read_csv(f"{d}/there.csv")
    assert len(here) == 2 * 48
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    wf_args = ["walkforward", "-s", "ETH/USDT", "-t", "4h", "--strategy", "sma_cross", "-g", "fast=5,10,20",
               "-g", "slow=30,60", "--train", "60d", "--test", "30d", "--json"]  # fmt: skip
    local = cli(*wf_args, "--scheduler", "none", env=env).stdout
    remote = cli(*wf_args, "--scheduler", standalone_cluster, env=env).stdout
    assert json.loads(remote) == json.loads(local) and len(json.loads(local)["folds"]) >= 6


def test_two_processes_share_one_study_on_postgresql(tmp_path):
    url = os.environ.get("TRADELAB_TEST_PG_URL")
    if not url:
        if os.environ.get("TRADELAB_REQUIRE_PG"):
            pytest.fail("TRADELAB_TEST_PG_URL is not set although CI started PostgreSQL")
        pytest.skip("no PostgreSQL server here (CI starts one and sets TRADELAB_TEST_PG_URL)")
    import optuna
    import sqlalchemy as sa

    from tradelab.optimize import open_storage
    from tradelab.store import open_store

    env = {"TRADELAB_DATA_DIR": str(tmp_path), "TRADELAB_DB_URL": url}
    cli("data", "import", str(BTC_1H), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h", env=env)
    study = f"shared-{os.getpid()}"
    args = [TRADELAB, "optimize", "-s", "BTC/USDT", "-t", "1h", "--strategy", "sma_cross", "--start", "2023-01-01",
            "-g", "fast=5:60:1", "-g", "slow=61:250:1", "-n", "40", "--study", study, "--json"]  # fmt: skip
    procs = [
        subprocess.Popen([*args, "--seed", str(seed)], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]
    docs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(doc["ran"] > 0 for doc in docs), [doc["ran"] for doc in docs]  # both worked on the study
    trials = optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 40 <= len(finished) <= 41  # the target, overshot by at most one trial started while the other finished
    assert sum(doc["ran"] for doc in docs) == len(finished)
    assert len({t.number for t in trials}) == len(trials)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as c:  # Optuna's tables in their schema; the state database's untouched and usable
        schemas = dict(c.execute(sa.text("SELECT table_name, table_schema FROM information_schema.tables")).all())
    engine.dispose()
    assert schemas["trials"] == "optuna" and schemas["studies"] == "optuna"
    open_store(url).engine.dispose()
