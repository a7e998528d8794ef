"""Stream latency: from the venue's bar-close message to the order leaving the runner.

The Binance REST simulator and kline stream replay one-second bars (seeded random walks) on the wall clock; a runner
on `--feed ccxt-ws` (the real ccxt.pro client, the paper broker, SQLite) trades them with a fast moving-average cross,
so many bars give orders. For each order: the time the paper broker is handed it minus the event time `E` of the
closing kline message of its bar (stamped by the server as it sends). Also the time from that message to the bar's
delivery by the feed. One symbol, then 50 symbols closing at once (one connection, one SUBSCRIBE for all).
Targets (issue 17): p99 under 20 ms for one symbol, under 200 ms for 50.
Run: .venv/bin/python benchmarks/bench_streams.py [--bars 60]
"""

import argparse
import logging
import tempfile
import threading
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from tradelab.brokers import PaperBroker
from tradelab.config import load_settings
from tradelab.data import synthetic_ohlcv
from tradelab.feeds import stream_feed
from tradelab.runner import Runner, RunSpec
from tradelab.sim_binance import BinanceSimulator
from tradelab.sim_streams import BinanceKlineStream, Clock, LiveReplay, restamp
from tradelab.sources import CcxtSource
from tradelab.store import open_store

WARM = 12


def measure(n_symbols: int, bars: int) -> dict:
    step = pd.Timedelta("1s")
    symbols = [f"S{k:02d}/USDT" for k in range(n_symbols)]
    clock = Clock()
    frames = {
        s: restamp(synthetic_ohlcv(WARM + bars + 5, "1h", seed=k), step, WARM, clock) for k, s in enumerate(symbols)
    }
    rest = BinanceSimulator(frames, start=next(iter(frames.values())).index[WARM])
    stream = BinanceKlineStream("1s", step)
    closes: dict = {}  # bar open -> event time of its closing messages (all symbols close at once)
    publish = stream.publish

    def stamped(items, final=True, event_ms=None):
        now_ms = time.time() * 1000
        if final and items:
            closes[items[0][1]] = now_ms / 1000
        return publish(items, final, now_ms)

    stream.publish = stamped
    with rest, stream, LiveReplay(rest, stream, step, clock):
        spec = RunSpec("sma_cross", "binance", ",".join(symbols), "1s", {"fast": 2, "slow": 4}, feed="ccxt-ws",
                       window=10, stale_after=30.0)  # fmt: skip
        settings = load_settings(ccxt_api_url=rest.url, ccxt_ws_url=stream.url, ws_heartbeat_interval_seconds=5.0)
        store = open_store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
        broker = PaperBroker(store, spec.run_id, spec.cash, spec.costs)
        sent: list = []  # (bar open, time handed to the broker)
        place = broker.place

        def timed(req):
            sent.append((runner.last_bar, time.time()))
            return place(req)

        broker.place = timed
        source = CcxtSource("binance", api_url=rest.url)
        feed = stream_feed(spec, settings, source, logging.getLogger("bench"))
        delivered: list = []
        next_bar = feed.next_bar

        def watched(timeout=1.0):
            item = next_bar(timeout)
            if item is not None:
                delivered.append((item[0], time.time()))
            return item

        feed.next_bar = watched
        quiet = logging.getLogger("bench.runner")
        quiet.setLevel(logging.ERROR)  # a panel's paper orders that the cash cannot cover are rejected: not news here
        runner = Runner(spec, store, broker, feed, settings=settings, log=quiet, max_bars=bars)
        done = threading.Thread(target=runner.run, daemon=True)
        done.start()
        done.join(bars * 3 + 60)
        feed.close()
    order_ms = np.array([(t - closes[b]) * 1e3 for b, t in sent if b in closes])
    feed_ms = np.array([(t - closes[b]) * 1e3 for b, t in delivered[2:] if b in closes])  # after the start's back-fill
    return {"orders": order_ms, "deliveries": feed_ms, "reconnects": feed.reconnects, "backfilled": feed.backfilled}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=60)
    a = ap.parse_args()
    t = Table(title="bar-close message -> order handed to the broker (ms), ccxt.pro on the Binance stream simulator")
    for c in ("symbols", "target p99", "orders", "p50", "p99", "max", "feed p50", "feed p99", "reconnects"):
        t.add_column(c, justify="right")
    for n, target in ((1, 20), (50, 200)):
        m = measure(n, a.bars)
        o, d = m["orders"], m["deliveries"]
        t.add_row(str(n), f"{target} ms", str(len(o)), *(f"{np.percentile(o, q):.1f}" for q in (50, 99)),
                  f"{o.max():.1f}", f"{np.percentile(d, 50):.1f}", f"{np.percentile(d, 99):.1f}",
                  str(m["reconnects"]))  # fmt: skip
    Console().print(t)


if __name__ == "__main__":
    main()
