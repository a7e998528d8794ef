"""The live runner as a user runs it: `tradelab run` in its own process against the shared BTC/USDT 1h history,
killed with SIGKILL and restarted, stopped with SIGTERM, its /healthz and /metrics scraped by a real Prometheus,
its state in SQLite (and PostgreSQL when CI provides a server)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.data import synthetic_ohlcv
from tradelab.fakes import FakeBinance
from tradelab.ohlcv import read_ohlcv_file
from tradelab.store import open_store, schema_drift

TRADELAB = str(Path(sys.executable).parent / "tradelab")
TEST_DATA = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
BTC_1H = TEST_DATA / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"
SECRETS = {
    "TRADELAB_CCXT_API_KEY": "ck-LIVE-9f8e7d6c5b4a",
    "TRADELAB_CCXT_SECRET": "cs-TOPSECRET-0a1b2c3d4e5f",
    "TRADELAB_ALPACA_API_KEY": "AK-SECRET-KEY-77aa",
    "TRADELAB_ALPACA_SECRET_KEY": "SK-VERY-SECRET-88bb",
}


def cli(*args, env, timeout=300, check=True):
    r = subprocess.run([TRADELAB, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    if check:
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def data_dir():
    d = tempfile.mkdtemp(prefix="tl-runner-")
    cli(
        "data",
        "import",
        str(BTC_1H),
        "--exchange",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--timeframe",
        "1h",
        env={"TRADELAB_DATA_DIR": d},
    )
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_args(strategy, params, start, end, db, *extra):
    out = [
        "run",
        "--strategy",
        strategy,
        "-s",
        "BTC/USDT",
        "-t",
        "1h",
        "-e",
        "binance",
        "--start",
        start,
        "--end",
        end,
        "--db",
        db,
        "--health-port",
        "-1",
        "--fees",
        "0.001",
        "--slippage",
        "0.0005",
    ]
    for p in params:
        out += ["-p", p]
    return out + list(extra)


def backtest_fills(data_dir, strategy, params, start, end):
    args = [
        "backtest",
        "--strategy",
        strategy,
        "-s",
        "BTC/USDT",
        "-t",
        "1h",
        "-e",
        "binance",
        "--start",
        start,
        "--end",
        end,
        "--fees",
        "0.001",
        "--slippage",
        "0.0005",
        "--json",
    ]
    for p in params:
        args += ["-p", p]
    doc = json.loads(cli(*args, env={"TRADELAB_DATA_DIR": data_dir}).stdout)
    return [(f["time"], f["side"], f["price"], f["qty"], f["fee"]) for f in doc["fills"]]


def exported_fills(data_dir, db):
    out = cli(
        "export", "--table", "fills", "--format", "ndjson", "--db", db, env={"TRADELAB_DATA_DIR": data_dir}
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return [(r["time"], r["side"], r["price"], r["qty"], r["fee"]) for r in rows], rows


CASES = [("sma_cross", ["fast=10", "slow=50"]), ("bollinger_breakout", ["window=20", "k=2.0"])]


@pytest.mark.parametrize("strategy,params", CASES)
def test_replay_fills_equal_backtest_fills(data_dir, tmp_path, strategy, params):
    start, end = "2023-01-01", "2023-04-01"
    db = f"sqlite:///{tmp_path}/state.db"
    r = cli(*run_args(strategy, params, start, end, db), env={"TRADELAB_DATA_DIR": data_dir})
    assert "finished" in r.stdout
    expected = backtest_fills(data_dir, strategy, params, start, end)
    got, rows = exported_fills(data_dir, db)
    assert len(expected) >= 10
    assert got == expected  # same bars, same prices, quantities and fees, to the bit
    assert {"time", "side", "price", "qty", "fee", "client_order_id"} <= set(rows[0])


def _wait_for_decisions(store, n, procs, limit=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and any(p.poll() is None for p in procs):
        try:
            if len(store.table("decisions")) >= n:
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False


def test_two_processes_racing_on_one_run(data_dir, tmp_path):
    """Two `tradelab run` processes started together for the same run and database: exactly one trades; the
    other is refused before it writes anything, naming the holder's pid. Killed with SIGKILL, the run is shown
    as crashed and resumes with the same command, without any clean-up."""
    db = f"sqlite:///{tmp_path}/state.db"
    args = run_args("sma_cross", [], "2023-01-01", "2023-12-01", db, "--speed", "36000")
    env = {**os.environ, "TRADELAB_DATA_DIR": data_dir}
    procs = [
        subprocess.Popen([TRADELAB, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    store = open_store(db)
    try:
        assert _wait_for_decisions(store, 5, procs)
        t0 = time.monotonic()  # the loser may still be starting up on a busy machine
        while all(p.poll() is None for p in procs) and time.monotonic() - t0 < 180:
            time.sleep(0.1)
        losers = [p for p in procs if p.poll() is not None]
        assert len(losers) == 1, [p.returncode for p in procs]
        loser, winner = losers[0], next(p for p in procs if p.poll() is None)
        out, err = loser.communicate(timeout=30)
        assert loser.returncode == 1 and "Traceback" not in err, err[-2000:]
        assert f"already running in process {winner.pid}" in err and f"kill -TERM {winner.pid}" in err, err[-2000:]
        run = store.table("runs").iloc[0]
        assert run.status == "running" and run.restarts == 0 and run.pid == winner.pid  # the loser wrote nothing
        status = json.loads(cli("status", "--json", "--db", db, env={"TRADELAB_DATA_DIR": data_dir}).stdout)[0]
        assert status["status"] == "running" and status["pid"] == winner.pid
        winner.send_signal(signal.SIGKILL)
        winner.wait(30)
        status = json.loads(cli("status", "--json", "--db", db, env={"TRADELAB_DATA_DIR": data_dir}).stdout)[0]
        assert status["status"].startswith(f"crashed (process {winner.pid} is gone") and status["pid"] is None, status
        done = len(store.table("decisions"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    r = cli(
        *run_args("sma_cross", [], "2023-01-01", "2023-02-01", db), env={"TRADELAB_DATA_DIR": data_dir}, check=False
    )
    assert "already running" not in r.stderr  # the dead holder's lock went with it
    assert len(store.table("decisions")) >= done
    assert store.table("runs").iloc[0].restarts == 1


def test_sigterm_records_a_stopped_run_and_exits_0(data_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/state.db"
    p = subprocess.Popen(
        [TRADELAB, *run_args("sma_cross", [], "2023-01-01", "2023-12-01", db, "--speed", "36000")],
        env={**os.environ, "TRADELAB_DATA_DIR": data_dir},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = open_store(db)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        try:
            if len(store.table("decisions")) >= 20:
                break
        except Exception:
            pass
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err[-2000:]
    run = store.table("runs").iloc[0]
    assert run.status == "stopped" and run.stop_reason == "SIGTERM" and run.stopped_at is not None
    assert "stopped" in out
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("event") == "stop" and r.get("status") == "stopped" for r in logs)


def test_no_secret_reaches_logs_database_or_exports(data_dir, tmp_path):
    db_path = tmp_path / "state.db"
    env = {"TRADELAB_DATA_DIR": data_dir, **SECRETS}
    r = cli(*run_args("sma_cross", [], "2023-02-01", "2023-03-01", f"sqlite:///{db_path}"), env=env)
    logs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    start = next(x for x in logs if x.get("event") == "start")
    assert start["credentials"] == {"ccxt": True, "alpaca": True} and start["mode"] == "paper" and start["version"]
    texts = [r.stdout, r.stderr]
    for table in ("runs", "decisions", "orders", "fills", "equity"):
        for fmt in ("csv", "ndjson"):
            texts.append(
                cli("export", "--table", table, "--format", fmt, "--db", f"sqlite:///{db_path}", env=env).stdout
            )
    texts.append(cli("status", "--db", f"sqlite:///{db_path}", env=env).stdout)
    blobs = b"".join(p.read_bytes() for p in tmp_path.rglob("state.db*") if p.is_file())  # db, WAL, run locks
    for secret in SECRETS.values():
        assert all(secret not in t for t in texts), secret
        assert secret.encode() not in blobs, secret


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz_goes_503_when_the_feed_is_stale_and_prometheus_scrapes_metrics(tmp_path):
    """Live ccxt polling of 1s bars from a local Binance: the bars stop 25 s after the start, so the feed goes stale."""
    prom = shutil.which("prometheus")
    if prom is None and os.environ.get("TRADELAB_REQUIRE_PROMETHEUS"):
        pytest.fail("prometheus is not installed")
    now = pd.Timestamp.now(tz="UTC").floor("s")
    bars = synthetic_ohlcv(
        2025, "1s", seed=5, start=now - pd.Timedelta(seconds=2000)
    )  # the last ~25 closing in the future
    with FakeBinance({"BTC/USDT": bars}) as fake:
        db = f"sqlite:///{tmp_path}/state.db"
        port = _free_port()
        p = subprocess.Popen(
            [
                TRADELAB,
                "run",
                "--strategy",
                "sma_cross",
                "-p",
                "fast=3",
                "-p",
                "slow=8",
                "-s",
                "BTC/USDT",
                "-t",
                "1s",
                "-e",
                "binance",
                "--feed",
                "ccxt",
                "--window",
                "50",
                "--poll",
                "1",
                "--stale-after",
                "3",
                "--db",
                db,
                "--health-port",
                str(port),
            ],
            env={**os.environ, "TRADELAB_CCXT_API_URL": fake.url, "TRADELAB_DATA_DIR": str(tmp_path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            seen, t0 = [], time.monotonic()
            prom_proc = prom_port = None
            if prom:
                prom_port = _free_port()
                (tmp_path / "prometheus.yml").write_text(
                    f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tradelab\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{port}']\n"
                )
                prom_proc = subprocess.Popen(
                    [
                        prom,
                        f"--config.file={tmp_path}/prometheus.yml",
                        f"--storage.tsdb.path={tmp_path}/tsdb",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            scraped = None
            while time.monotonic() - t0 < 90:
                try:
                    code, body = _get(f"http://127.0.0.1:{port}/healthz")
                except OSError:
                    code, body = None, None
                if code:
                    seen.append((code, json.loads(body)))
                if prom and scraped is None:
                    try:
                        _, q = _get(f"http://127.0.0.1:{prom_port}/api/v1/query?query=tradelab_bars_processed_total")
                        res = json.loads(q)["data"]["result"]
                        if res and float(res[0]["value"][1]) > 0:
                            scraped = float(res[0]["value"][1])
                    except (OSError, ValueError, KeyError):
                        pass
                if seen and seen[-1][0] == 503 and any(c == 200 for c, _ in seen) and (scraped or not prom):
                    break
                time.sleep(0.5)
            assert any(c == 200 for c, _ in seen), seen[-3:]
            assert seen[-1][0] == 503, seen[-3:]
            assert any("feed stale" in r for r in seen[-1][1]["reasons"]), seen[-1]
            code, metrics = _get(f"http://127.0.0.1:{port}/metrics")
            assert (
                code == 200
                and "tradelab_decision_latency_seconds_bucket" in metrics
                and "tradelab_feed_stale 1.0" in metrics
            )
            if prom:
                assert scraped and scraped > 0, "Prometheus never scraped a processed bar"
            else:
                pytest.skip("prometheus not installed here (CI installs it): health part checked, scrape skipped")
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=30)
            if prom and prom_proc:
                prom_proc.terminate()
                prom_proc.wait(10)
        assert p.returncode == 0


def test_postgresql_state_database(data_dir):
    url = os.environ.get("TRADELAB_TEST_PG_URL")
    if not url:
        if os.environ.get("TRADELAB_REQUIRE_PG"):
            pytest.fail("TRADELAB_TEST_PG_URL is not set although CI started PostgreSQL")
        pytest.skip("no PostgreSQL server here (CI starts one and sets TRADELAB_TEST_PG_URL)")
    import sqlalchemy as sa

    store = open_store(url)
    with store.engine.begin() as c:  # a clean slate: drop everything and migrate again
        c.execute(sa.text("DROP SCHEMA public CASCADE"))
        c.execute(sa.text("CREATE SCHEMA public"))
    store = open_store(url)
    assert schema_drift(store.engine) == []
    start, end = "2023-01-01", "2023-03-01"
    cli(*run_args("sma_cross", ["fast=10", "slow=50"], start, end, url), env={"TRADELAB_DATA_DIR": data_dir})
    got, _ = exported_fills(data_dir, url)
    assert got == backtest_fills(data_dir, "sma_cross", ["fast=10", "slow=50"], start, end)
    run_id = store.table("runs").id.iloc[0]
    held = store.lock_run(run_id)  # a PostgreSQL session advisory lock
    other = open_store(url)
    assert other.run_alive(run_id)
    with pytest.raises(Exception, match="already running"):
        other.lock_run(run_id)
    r = cli(
        *run_args("sma_cross", ["fast=10", "slow=50"], start, end, url),
        env={"TRADELAB_DATA_DIR": data_dir},
        check=False,
    )
    assert r.returncode == 1 and "already running" in r.stderr, r.stderr[-2000:]
    held._conn.invalidate()  # the holder's connection dies without unlocking
    held._conn = None
    held.held = False
    t0 = time.monotonic()
    while other.run_alive(run_id) and time.monotonic() - t0 < 30:
        time.sleep(0.1)
    assert not other.run_alive(run_id)  # the server dropped the lock with the session
    pw = sa.make_url(url).password
    if pw:
        status = cli("status", "--db", url, env={"TRADELAB_DATA_DIR": data_dir})
        assert pw not in status.stdout + status.stderr


def test_kill_switch_halts_a_running_replay_and_flattens(data_dir, tmp_path):
    db = f"sqlite:///{tmp_path}/state.db"
    env = {"TRADELAB_DATA_DIR": data_dir}
    p = subprocess.Popen(
        [
            TRADELAB,
            *run_args(
                "sma_cross", ["fast=10", "slow=50"], "2023-01-01", "2023-12-01", db, "--speed", "7200", "--warmup", "60"
            ),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = open_store(db)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 90:  # wait until the run holds a position
        try:
            pos = store.table("positions")
            if len(pos) and pos.qty.iloc[0] > 0:
                break
        except Exception:
            pass
        time.sleep(0.05)
    r = cli("kill", "--flatten", "--db", db, env=env)
    assert "halted by the runner" in r.stdout, r.stdout
    t0 = time.monotonic()
    while time.monotonic() - t0 < 90:  # a few more bars: the flatten order fills at the next open
        o = store.table("orders")
        if ((o.intent == "flatten") & (o.status == "filled")).any():
            break
        time.sleep(0.1)
    time.sleep(1)  # and some bars after it, decided with the switch on
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err[-2000:]
    run = store.table("runs").iloc[0]
    assert run.status == "killed" and run.kill_requested
    orders = store.table("orders")
    assert (orders.intent == "flatten").sum() == 1 and orders[orders.intent == "flatten"].status.iloc[0] == "filled"
    d = store.table("decisions")
    assert d.bar_time.min() == pd.Timestamp("2023-01-01", tz="UTC")  # the 60 warm-up bars were history only
    after = d[d.bar_time > orders[orders.intent == "flatten"].bar_time.iloc[0]]
    assert (after.action == "hold").all() and (after.position == 0).all()
    assert (after[after.signal == "entry"].reason == "kill switch is on").all()
    status = json.loads(cli("status", "--json", "--db", db, env=env).stdout)[0]
    assert status["kill_switch"] and status["position"] == 0.0


PANEL_DIR = TEST_DATA / "ohlcv/binance-spot-2024"


def _fills_by_symbol(rows: list[dict], symbol: str | None = None) -> list[tuple]:
    return sorted((r["time"], r.get("symbol") or symbol, r["side"], r["price"], r["qty"], r["fee"]) for r in rows)


def _replay_and_backtest(data_dir, tmp_path, symbols, timeframe, start, end, params, extra=()):
    "`tradelab run` (paper replay) and `tradelab backtest --json` on the same market: both fill lists, sorted."
    market = ["-t", timeframe, "-e", "binance", "--start", start, "--end", end]
    market += ["--fees", "0.001", "--slippage", "0.0005"]
    market += [a for s in symbols for a in ("-s", s)] + [a for p in params for a in ("-p", p)] + list(extra)
    db = f"sqlite:///{tmp_path}/state.db"
    env = {"TRADELAB_DATA_DIR": data_dir}
    r = cli("run", "--strategy", "sma_cross", *market, "--db", db, "--health-port", "-1", env=env)
    assert "finished" in r.stdout, r.stdout[-2000:]
    doc = json.loads(cli("backtest", "--strategy", "sma_cross", *market, "--json", env=env).stdout)
    _, rows = exported_fills(data_dir, db)
    one = symbols[0] if len(symbols) == 1 else None
    return _fills_by_symbol(rows, one), _fills_by_symbol(doc["fills"], one)


def test_panel_replay_equals_the_backtest_on_ten_symbols(tmp_path):
    """The shared 10-symbol 5m panel, a day: one run trading all ten with shared cash gives the backtest's fills
    (each entry a tenth of the starting cash; sells before buys on a bar)."""
    d = str(tmp_path / "data")
    cli("data", "import", str(PANEL_DIR), "--exchange", "binance", env={"TRADELAB_DATA_DIR": d})
    symbols = sorted(f.name.split("-")[0].replace("_", "/") for f in PANEL_DIR.glob("*_USDT-5m.feather"))
    assert len(symbols) == 10
    got, expected = _replay_and_backtest(d, tmp_path, symbols, "5m", "2024-03-01", "2024-03-02", ["fast=12", "slow=48"])
    assert len(expected) > 50 and len({f[1] for f in expected}) == 10
    assert got == expected


def test_long_short_replay_with_stops_equals_the_backtest(data_dir, tmp_path):  # noqa: F811
    "BTC/USDT 1h, a strategy that also sells short (reversals in one order), with a trailing stop and a take-profit."
    stops = ["--trailing-stop", "0.02", "--take-profit", "0.04"]
    got, expected = _replay_and_backtest(
        data_dir, tmp_path, ["BTC/USDT"], "1h", "2023-01-01", "2023-03-01", ["fast=10", "slow=30", "short=true"], stops
    )
    held, lowest = 0.0, 0.0
    for _, _, side, _, qty, _ in expected:
        held += qty if side == "buy" else -qty
        lowest = min(lowest, held)
    assert len(expected) > 10 and lowest < 0  # it was short
    assert got == expected


def test_two_bots_in_one_database(data_dir, tmp_path):  # noqa: F811
    """Two runs (two strategies) in one state database at the same time, each isolated by its run: both finish with
    their own backtest's fills; status lists both; exports and the kill switch act on the run named."""
    db = f"sqlite:///{tmp_path}/state.db"
    env = {**os.environ, "TRADELAB_DATA_DIR": data_dir}
    start, end = "2023-01-01", "2023-02-01"
    bots = [("sma_cross", ["fast=10", "slow=50"]), ("bollinger_breakout", ["window=20", "k=2.0"])]
    procs = [
        subprocess.Popen([TRADELAB, *run_args(s, p, start, end, db)], env=env, stdout=subprocess.PIPE, text=True)
        for s, p in bots
    ]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0 and "finished" in out, out[-2000:]
    runs = json.loads(cli("status", "--json", "--db", db, env={"TRADELAB_DATA_DIR": data_dir}).stdout)
    assert sorted(r["strategy"].split()[0] for r in runs) == sorted(s for s, _ in bots)
    for r in runs:
        strategy, params = next(b for b in bots if r["strategy"].startswith(b[0]))
        out = cli(
            "export",
            "--table",
            "fills",
            "--format",
            "ndjson",
            "--run",
            r["run"],
            "--db",
            db,
            env={"TRADELAB_DATA_DIR": data_dir},
        ).stdout
        rows = [json.loads(line) for line in out.splitlines()]
        assert {row["run_id"] for row in rows} == {r["run"]}
        got = [(row["time"], row["side"], row["price"], row["qty"], row["fee"]) for row in rows]
        assert got == backtest_fills(data_dir, strategy, params, start, end), strategy
    first, second = runs[0]["run"], runs[1]["run"]
    out = cli("kill", first, "--db", db, env={"TRADELAB_DATA_DIR": data_dir}).stdout
    assert first in out and second not in out
    after = {r["run"]: r["kill_switch"] for r in json.loads(cli("status", "--json", "--db", db, env=env).stdout)}
    assert after == {first: True, second: False}


def test_stock_run_trades_only_in_sessions_across_a_weekend_a_holiday_and_an_early_close(tmp_path):
    """AAPL 30m bars around the clock (pre- and post-market, a holiday, a weekend) from 2024-11-18 to 2024-12-03: a
    paper replay on Alpaca's exchange trades the NYSE sessions alone (Thanksgiving closed, the next day closing at
    13:00 New York time), decides once per session bar and no other, and gives the backtest's fills."""
    d, db = str(tmp_path / "data"), f"sqlite:///{tmp_path}/state.db"
    bars = synthetic_ohlcv(16 * 48, "30m", seed=7, start="2024-11-18", price=230.0)
    src = tmp_path / "AAPL-30m.feather"
    bars.reset_index().rename(columns={"index": "date"}).to_feather(src)
    env = {"TRADELAB_DATA_DIR": d}
    cli("data", "import", str(src), "--exchange", "alpaca", "--symbol", "AAPL", "--timeframe", "30m", env=env)
    market = ["-e", "alpaca", "-s", "AAPL", "-t", "30m", "--start", "2024-11-25", "--end", "2024-12-03"]
    market += ["-p", "fast=3", "-p", "slow=8", "--fees", "0.001"]
    r = cli("run", "--strategy", "sma_cross", *market, "--db", db, "--health-port", "-1", env=env)
    assert "finished" in r.stdout, r.stdout[-2000:]
    doc = json.loads(cli("backtest", "--strategy", "sma_cross", *market, "--json", env=env).stdout)
    store = open_store(db)
    decided = store.table("decisions").bar_time.dt.tz_convert("America/New_York")
    per_day = {str(k): v for k, v in decided.groupby(decided.dt.date).size().items()}
    assert per_day == {"2024-11-25": 13, "2024-11-26": 13, "2024-11-27": 13, "2024-11-29": 7, "2024-12-02": 13}
    assert decided.min().strftime("%H:%M") == "09:30" and decided.dt.strftime("%H:%M").max() == "15:30"
    early = decided[decided.dt.date == pd.Timestamp("2024-11-29").date()]
    assert early.dt.strftime("%H:%M").max() == "12:30"  # the bar 12:30-13:00 closes with the session
    fills = store.table("fills")
    assert len(fills) >= 4
    times = fills.time.dt.tz_convert("America/New_York")
    assert ((times.dt.time >= pd.Timestamp("09:30").time()) & (times.dt.time < pd.Timestamp("16:00").time())).all()
    got = sorted((f.time, f.side, round(f.price, 8), round(f.qty, 8)) for f in fills.itertuples())
    want = sorted((pd.Timestamp(f["time"]), f["side"], round(f["price"], 8), round(f["qty"], 8)) for f in doc["fills"])
    assert got == want


def test_live_panel_decides_every_symbol_on_every_bar(tmp_path):
    """Live ccxt polling of two symbols' 1s bars from a local Binance: the panel decides both symbols on each bar
    time, together, and stops cleanly on SIGTERM."""
    now = pd.Timestamp.now(tz="UTC").floor("s")
    bars = synthetic_ohlcv(200, "1s", seed=9, start=now - pd.Timedelta(seconds=150))
    with FakeBinance({"BTC/USDT": bars, "ETH/USDT": bars / 20}) as fake:
        db = f"sqlite:///{tmp_path}/state.db"
        args = ["run", "--strategy", "sma_cross", "-p", "fast=3", "-p", "slow=8", "-s", "BTC/USDT", "-s", "ETH/USDT"]
        args += ["-t", "1s", "-e", "binance", "--feed", "ccxt", "--window", "30", "--poll", "1", "--db", db]
        env = {**os.environ, "TRADELAB_CCXT_API_URL": fake.url, "TRADELAB_DATA_DIR": str(tmp_path)}
        p = subprocess.Popen([TRADELAB, *args, "--health-port", "-1"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                time.sleep(1)
                try:
                    decided = open_store(db).table("decisions")
                except Exception:  # not created yet
                    continue
                if decided.bar_time.nunique() >= 6:
                    break
        finally:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out[-2000:]
    decided = open_store(db).table("decisions")
    per_bar = decided.groupby("bar_time").symbol.apply(sorted)
    assert len(per_bar) >= 6, out[-2000:]
    assert all(s == ["BTC/USDT", "ETH/USDT"] for s in per_bar), per_bar
    assert (per_bar.index.to_series().diff().dropna() == pd.Timedelta("1s")).all()  # no bar skipped


def test_a_model_bundle_trades_in_a_replay_as_in_its_backtest_and_records_its_scores(data_dir, tmp_path):  # noqa: F811
    """`tradelab run --strategy model:FOLDER`: the replay's fills equal the backtest's, and every decision row carries
    the bundle's hash and the model's score at that bar."""
    from tradelab.dataset import build_dataset
    from tradelab.features import build_features
    from tradelab.models import train_model

    candles = read_ohlcv_file(BTC_1H)
    bundle = train_model(build_dataset(candles.loc["2022-01":"2022-12"], "direction", 24))
    folder = bundle.save(tmp_path / "bundle")
    start, end, params = "2023-01-01", "2023-03-01", ["entry=0.475", "exit=0.465"]  # around its base rate, 0.47
    db = f"sqlite:///{tmp_path}/state.db"
    strategy = f"model:{folder}"
    r = cli(*run_args(strategy, params, start, end, db), env={"TRADELAB_DATA_DIR": data_dir})
    assert "finished" in r.stdout
    got, _ = exported_fills(data_dir, db)
    expected = backtest_fills(data_dir, strategy, params, start, end)
    assert len(expected) >= 4 and got == expected
    out = cli("export", "--table", "decisions", "--format", "ndjson", "--db", db, env={"TRADELAB_DATA_DIR": data_dir})
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows and {r["model"] for r in rows} == {bundle.hash}
    assert sum(r["score"] is not None for r in rows) > len(rows) * 0.9  # None only in the features' warm-up
    window = candles[(candles.index >= pd.Timestamp(start, tz="UTC")) & (candles.index < pd.Timestamp(end, tz="UTC"))]
    scores = bundle.predict(build_features(window, bundle.features))
    for row in rows[::50]:
        expected_score = scores.loc[pd.Timestamp(row["bar_time"])]
        if np.isnan(expected_score):
            assert row["score"] is None
        else:
            assert abs(row["score"] - expected_score) <= 1e-12 * max(1.0, abs(expected_score)), row
    # the bundle in the folder is replaced by another: resuming the run is refused, and nothing of it changes
    before = open_store(db).get_run(_only_run_id(db))
    other = train_model(build_dataset(candles.loc["2021-01":"2021-12"], "direction", 24))
    other.save(folder)
    assert other.hash != bundle.hash
    r = cli(*run_args(strategy, params, start, "2023-04-01", db), env={"TRADELAB_DATA_DIR": data_dir}, check=False)
    assert r.returncode == 2 and f"traded the model bundle {bundle.hash[:12]}" in r.stderr, r.stderr[-2000:]
    assert f"now holds bundle {other.hash[:12]}" in r.stderr
    after = open_store(db).get_run(before["id"])
    assert after == before
    assert len(open_store(db).table("decisions", before["id"])) == len(rows)
    assert json.loads(before["spec"])["model"] == bundle.hash  # the spec records the bundle the run trades


def _only_run_id(db: str) -> str:
    (run_id,) = open_store(db).table("runs").id
    return run_id
