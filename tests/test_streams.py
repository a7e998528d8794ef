"""A live run on a WebSocket stream loses and repeats no bar across many faults: `tradelab run --feed ccxt-ws` trades
one-second bars replayed by the Binance REST simulator and kline stream (real BTC/USDT candles re-stamped onto the
wall clock) while the stream is cut, silenced, refused and sent duplicated, swapped and stale messages - at least 50
forced disconnects - and its fills equal those of a replay of the same bars from the candle store (`--feed replay`).

The seed is printed in every failure message; `TRADELAB_TEST_SEED=<seed>` replays the same faults."""

import json
import logging
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pandas as pd
from test_runner import BTC_1H, TRADELAB, cli, exported_fills

from tradelab.brokers import PaperBroker
from tradelab.decide import LATE, STALE
from tradelab.feeds import ReplayFeed
from tradelab.ohlcv import read_ohlcv_file
from tradelab.runner import Runner, RunSpec, run_fills
from tradelab.sim_alpaca import AlpacaSimulator
from tradelab.sim_binance import BinanceSimulator
from tradelab.sim_streams import AlpacaBarStream, BinanceKlineStream, Clock, LiveReplay, restamp
from tradelab.sources import AlpacaSource
from tradelab.store import open_store
from tradelab.strategies import sma_cross
from tradelab.streams import AlpacaStreamClient, StreamFeed

WINDOW, BARS = 30, 60
PARAMS = ["-p", "fast=3", "-p", "slow=8"]
STREAM_ENV = {
    "TRADELAB_WS_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "TRADELAB_WS_IDLE_TIMEOUT_SECONDS": "1.5",
    "TRADELAB_WS_RETRY_BACKOFF_SECONDS": "0.05",
    "TRADELAB_WS_RETRY_BACKOFF_CAP_SECONDS": "0.3",
    "TRADELAB_WS_MAX_RECONNECT_ATTEMPTS": "4",
}


def common(db: str) -> list:
    return ["--strategy", "sma_cross", *PARAMS, "-s", "BTC/USDT", "-t", "1s", "-e", "binance", "--db", db,
            "--window", str(WINDOW), "--fees", "0.001", "--slippage", "0.0005"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text: str, name: str) -> float:
    "A sample's value from a Prometheus text exposition (0 when absent)."
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def inject_faults(stream: BinanceKlineStream, replay: LiveReplay, rng: random.Random, log: list):
    "Until the replay ends: every 0.6 s a connection fault, half the time with a message fault for the next bar."
    while not replay.done.wait(0.6):
        fault = rng.choice(["drop", "drop", "silence", "refuse"])
        if fault == "refuse":
            stream.refuse(rng.uniform(0.2, 0.8))
        else:
            getattr(stream, fault)()
        if rng.random() < 0.5:
            stream.inject(rng.choice(["duplicate", "swap", "stale"]))
        log.append(fault)


def test_stream_run_survives_disconnects_with_the_replay_fills(tmp_path):
    seed = int(os.environ.get("TRADELAB_TEST_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    stored = read_ohlcv_file(BTC_1H).loc["2023-03-01":].iloc[: WINDOW + 5 + BARS]
    step = pd.Timedelta("1s")
    live = restamp(stored, step, WINDOW + 5, Clock())
    rest = BinanceSimulator({"BTC/USDT": live}, start=live.index[WINDOW + 5])
    stream = BinanceKlineStream("1s", step)
    data_dir = tempfile.mkdtemp(prefix="tl-stream-")
    db = f"sqlite:///{tmp_path}/stream.db"
    faults: list = []
    with rest, stream, LiveReplay(rest, stream, step) as replay:
        env = {**os.environ, **STREAM_ENV, "TRADELAB_DATA_DIR": data_dir, "TRADELAB_LOG_FORMAT": "json",
               "TRADELAB_CCXT_API_URL": rest.url, "TRADELAB_CCXT_WS_URL": stream.url}  # fmt: skip
        log = tempfile.TemporaryFile("w+")
        port = free_port()
        args = ["run", *common(db), "--feed", "ccxt-ws", "--stale-after", "30", "--health-port", str(port)]
        p = subprocess.Popen([TRADELAB, *args], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        injector = threading.Thread(target=inject_faults, args=(stream, replay, rng, faults), daemon=True)
        injector.start()
        replay.done.wait(BARS * 2 + 60)
        time.sleep(3.0)  # the last bar's decision
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read())
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        injector.join(5)
        log.seek(0)
        stderr = log.read()
    where = f"(seed {seed}; faults {len(faults)}: {faults[:8]}...)"
    assert p.returncode == 0, f"{where} the run exited {p.returncode}: {stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    reconnects = stream.accepted - 1
    assert reconnects >= 50, f"{where} only {reconnects} reconnects"
    assert stream.dropped + sum(f == "silence" for f in faults) >= 50, where
    assert health["feed_mode"] in ("stream", "polling"), health
    assert metric(metrics, "tradelab_ws_reconnects_total") >= 50, where
    messages, backfilled = (
        metric(metrics, "tradelab_ws_messages_total"),
        metric(metrics, "tradelab_ws_backfilled_bars_total"),
    )
    assert messages >= 5 and backfilled >= 1, (where, messages, backfilled)
    assert 1 <= metric(metrics, "tradelab_ws_latency_seconds_count") <= messages, where  # a latency a message
    assert (
        metric(metrics, 'tradelab_feed_mode{mode="stream"}') + metric(metrics, 'tradelab_feed_mode{mode="polling"}')
        == 1
    )

    decided = open_store(db).table("decisions").sort_values("bar_time")
    bars = pd.DatetimeIndex(pd.to_datetime(decided.bar_time, utc=True))
    assert bars.is_unique and bars.is_monotonic_increasing, f"{where} a bar decided twice or out of order"
    first = live.index.get_loc(bars[0])
    expected = live.index[first : first + len(bars)]
    assert list(bars) == list(expected), f"{where} bars missing: {sorted(set(expected) - set(bars))[:5]}"
    assert len(bars) >= BARS // 2, f"{where} only {len(bars)} bars decided: {stderr[-2000:]}"
    assert messages + backfilled >= len(bars), f"{where} bars from nowhere: {messages} + {backfilled} < {len(bars)}"

    # the same bars replayed from the candle store, with the same warm-up
    frame = tmp_path / "BTC_USDT-1s.csv"
    live.to_csv(frame, index_label="date")
    cli("data", "import", str(frame), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1s",
        env={"TRADELAB_DATA_DIR": data_dir})  # fmt: skip
    replay_db = f"sqlite:///{tmp_path}/replay.db"
    end = (bars[-1] + step).isoformat()
    cli("run", *common(replay_db), "--feed", "replay", "--start", bars[0].isoformat(), "--end", end,
        "--warmup", str(WINDOW), "--health-port", "-1", env={"TRADELAB_DATA_DIR": data_dir})  # fmt: skip
    streamed, _ = exported_fills(data_dir, db)
    replayed, _ = exported_fills(data_dir, replay_db)
    assert len(replayed) >= 4, f"{where} too few fills to compare: {replayed}"
    assert streamed == replayed, f"{where} stream fills differ from the replay's:\n{streamed}\n{replayed}"


def test_alpaca_stream_runner_trades_the_replay_fills(tmp_path):
    """alpaca-py's stream on Alpaca's bar stream simulator, minute bars on a clock 120 times faster, a runner (the
    paper broker) trading them while connections are cut or go silent (a silent one holds Alpaca's one connection per
    key until the server reaps it: reconnects meanwhile are refused with 406) and bars come twice or out of order: the
    fills equal a replay's of the same bars."""
    seed = int(os.environ.get("TRADELAB_TEST_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    minute, n = pd.Timedelta("1min"), 32
    clock = Clock(pd.Timestamp("2024-03-05 15:00:30", tz="UTC"), speed=120)
    stored = read_ohlcv_file(BTC_1H).loc["2023-06-01":].iloc[: WINDOW + 5 + n]  # real prices, as minute bars
    live = restamp(stored, minute, WINDOW + 5, clock)
    rest = AlpacaSimulator({"AAPL": live}, start=live.index[WINDOW + 5])
    stream = AlpacaBarStream(ping_interval=0.3, ping_timeout=0.3)
    spec = RunSpec("sma_cross", "alpaca", "AAPL", "1m", {"fast": 3, "slow": 8}, feed="alpaca-ws", window=WINDOW,
                   stale_after=30.0, fees=0.001, slippage=0.0005)  # fmt: skip
    store = open_store(f"sqlite:///{tmp_path}/stream.db")
    quiet = logging.getLogger("test.streams")
    with rest, stream, LiveReplay(rest, stream, minute, clock, updates=False) as replay:
        url = stream.url + "/v2/iex"
        client = AlpacaStreamClient("sim-key", "sim-secret", ["AAPL"], heartbeat=0.5, idle=5.0, url=url)
        source = AlpacaSource(api_key="sim-key", secret_key="sim-secret", url_override=rest.url, now=clock.now)
        feed = StreamFeed(client, source, "1m", "alpaca-ws", backoff=0.05, backoff_cap=0.3, now=clock.now, seed=seed)
        runner = Runner(spec, store, PaperBroker(store, spec.run_id, spec.cash, spec.costs), feed, log=quiet)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        faults = []
        while not replay.done.wait(0.4):
            fault = rng.choice(["drop", "silence", "duplicate", "swap"])
            getattr(stream, fault)() if fault in ("drop", "silence") else stream.inject(fault)
            faults.append(fault)
        time.sleep(2.0)
        runner.request_stop("test over")
        thread.join(30)
        feed.close()
    where = f"(seed {seed}; faults {faults})"
    decided = store.table("decisions").sort_values("bar_time")
    bars = pd.DatetimeIndex(pd.to_datetime(decided.bar_time, utc=True))
    first = live.index.get_loc(bars[0])
    assert list(bars) == list(live.index[first : first + len(bars)]), f"{where} a bar missing or repeated"
    assert len(bars) >= n - 5 and feed.reconnects >= 10, (where, len(bars), feed.reconnects)

    replay_spec = RunSpec("sma_cross", "alpaca", "AAPL", "1m", {"fast": 3, "slow": 8}, start=str(bars[0]),
                          window=WINDOW, warmup=WINDOW, fees=0.001, slippage=0.0005)  # fmt: skip
    replay_store = open_store(f"sqlite:///{tmp_path}/replay.db")
    replay_feed = ReplayFeed(live.iloc[first - WINDOW : first + len(bars)], "1m")
    replay_feed.i = WINDOW
    broker = PaperBroker(replay_store, replay_spec.run_id, replay_spec.cash, replay_spec.costs)
    Runner(replay_spec, replay_store, broker, replay_feed, log=quiet).run()
    streamed, replayed = run_fills(store, spec.run_id), run_fills(replay_store, replay_spec.run_id)
    assert len(replayed) >= 4, f"{where} too few fills to compare: {replayed}"
    assert streamed == replayed, f"{where} stream fills differ from the replay's:\n{streamed}\n{replayed}"


def test_bars_caught_up_after_downtime_are_recorded_not_traded(tmp_path):
    """The runner process is frozen (SIGSTOP) for eight one-second bars: when it wakes, the bars it missed come from
    the stream's buffer and the REST back-fill, each decided once and in order, and those that closed longer ago than
    the late-bar rule (--stale-after 2) are recorded, with the late (or, while the feed is behind, the stale) reason,
    and get no order; bars on time trade again."""
    stored = read_ohlcv_file(BTC_1H).loc["2023-04-01":].iloc[: WINDOW + 5 + 26]
    step = pd.Timedelta("1s")
    live = restamp(stored, step, WINDOW + 5, Clock())
    signals = sma_cross(live, fast=3, slow=8)
    signalled = set(live.index[(signals.entries | signals.exits).to_numpy()])
    rest = BinanceSimulator({"BTC/USDT": live}, start=live.index[WINDOW + 5])
    stream = BinanceKlineStream("1s", step)
    data_dir = tempfile.mkdtemp(prefix="tl-late-")
    db = f"sqlite:///{tmp_path}/late.db"
    with rest, stream, LiveReplay(rest, stream, step) as replay:
        env = {**os.environ, **STREAM_ENV, "TRADELAB_DATA_DIR": data_dir, "TRADELAB_CCXT_API_URL": rest.url,
               "TRADELAB_CCXT_WS_URL": stream.url}  # fmt: skip
        args = ["run", *common(db), "--feed", "ccxt-ws", "--stale-after", "2", "--health-port", "-1"]
        p = subprocess.Popen([TRADELAB, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # freeze the run where the next bars hold a signal: the late rule must be what keeps them from trading
        store = open_store(db)
        while replay.closed < 26 and p.poll() is None:
            time.sleep(0.05)
            now = rest.now
            if now is not None and any(now + step * k in signalled for k in range(2, 5)) and replay.closed >= 6:
                break
        frozen_at = pd.Timestamp.now(tz="UTC")
        p.send_signal(signal.SIGSTOP)
        time.sleep(8.0)
        p.send_signal(signal.SIGCONT)
        replay.done.wait(60)
        time.sleep(3.0)
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr[-3000:]
    decided = store.table("decisions").sort_values("bar_time")
    bars = pd.DatetimeIndex(pd.to_datetime(decided.bar_time, utc=True))
    first = live.index.get_loc(bars[0])
    assert list(bars) == list(live.index[first : first + len(bars)]), "a bar missing or repeated"
    created = pd.to_datetime(decided.created_at, utc=True)
    late_by = (created - pd.Series(bars + step, index=decided.index)).dt.total_seconds()
    caught_up = decided[(late_by > 2.5) & (pd.Series(bars, index=decided.index) > frozen_at)]
    assert len(caught_up) >= 3, f"the freeze made no bar late: {late_by.max():.1f} s at most"
    with_signal = caught_up[caught_up.signal != "none"]
    assert len(with_signal) >= 1, caught_up
    # no order on them: each is late (closed too long ago), or the feed was still stale when it was decided
    assert with_signal.client_order_id.isna().all(), with_signal
    assert with_signal.reason.isin([LATE, STALE]).all(), with_signal.reason.tolist()
    on_time = decided[(late_by < 1.0) & (decided.signal != "none")]
    assert on_time.client_order_id.notna().any(), "bars on time must trade"
