"""A live run on a WebSocket stream loses and repeats no bar across many faults: `tradelab run --feed ccxt-ws` trades
one-second bars replayed by the Binance REST simulator and kline stream (real BTC/USDT candles re-stamped onto the
wall clock) while the stream is cut, silenced, refused and sent duplicated, swapped and stale messages - at least 50
forced disconnects - and its fills equal those of a replay of the same bars from the candle store (`--feed replay`).

The seed is printed in every failure message; `TRADELAB_TEST_SEED=<seed>` replays the same faults."""

import json
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

from tradelab.ohlcv import read_ohlcv_file
from tradelab.sim_binance import BinanceSimulator
from tradelab.sim_streams import BinanceKlineStream, Clock, LiveReplay, restamp
from tradelab.store import open_store

WINDOW, BARS = 30, 110
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
    "Until the replay ends: every 1.2 s a connection fault, half the time with a message fault for the next bar."
    while not replay.done.wait(1.2):
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
    assert metric(metrics, "tradelab_ws_messages_total") >= BARS / 2, where
    assert metric(metrics, "tradelab_ws_backfilled_bars_total") >= 1, where
    assert metric(metrics, "tradelab_ws_latency_seconds_count") >= BARS / 2, where
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
    assert len(bars) >= BARS - 10, f"{where} only {len(bars)} bars decided"

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
