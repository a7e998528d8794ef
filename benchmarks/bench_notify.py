"""Notifications never delay a decision: the same replay (3,000 BTC/USDT 1h bars, sma_cross 5/20, paper broker,
SQLite) without notifications, with a healthy webhook, and with a webhook that takes connections and never answers
(a dead channel), side by side. The whole time of each bar (signal, risk, database write, the order, its fill and
the fill's notification written to the outbox) p50/p99/max, and the same for the bars that had an order.
Run: .venv/bin/python benchmarks/bench_notify.py
"""

import json
import logging
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tradelab.brokers import PaperBroker
from tradelab.config import load_settings
from tradelab.data import read_ohlcv_file, synthetic_ohlcv
from tradelab.feeds import ReplayFeed
from tradelab.runner import Runner, RunSpec
from tradelab.store import open_store


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.dead:
            time.sleep(60)  # takes the connection, never answers
            return
        self.server.got += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def webhook(dead: bool) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads, server.dead, server.got = True, dead, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def replay(bars, urls: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    spec = RunSpec("sma_cross", "binance", "BTC/USDT", "1h", {"fast": 5, "slow": 20}, start=str(bars.index[0]))
    settings = load_settings(notify_urls=urls, notify_batch_seconds=0.5, notify_min_interval_seconds=1.0)
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/state.db")
    log = logging.getLogger(f"bench.notify.{bool(urls)}.{time.monotonic()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    r = Runner(
        spec, store, PaperBroker(store, spec.run_id, spec.cash, spec.costs), ReplayFeed(bars, "1h"), settings, log
    )
    r.run()
    lat = np.array(r.latencies[1:]) * 1e3
    decided = store.table("decisions")
    ordered = np.array(r.latencies)[np.asarray(decided.client_order_id.notna())][1:] * 1e3
    outbox = store.table("notifications")
    return lat, ordered, len(outbox)


def main():
    f = Path(os.environ.get("TRADELAB_TEST_DATA", Path(__file__).parents[2] / "shared/data"))
    f = f / "ohlcv/binance-spot-btc-1h/BTC_USDT-1h.feather"
    bars = read_ohlcv_file(f).iloc[-3000:] if f.exists() else synthetic_ohlcv(3000, "1h", seed=0)
    healthy, dead = webhook(False), webhook(True)
    t = Table(title=f"time per bar (ms), {len(bars):,} bars replayed, paper broker, SQLite")
    for c in ("channel", "p50", "p99", "max", "bars with an order: p50", "p99", "notifications written"):
        t.add_column(c, justify="right")
    for name, urls in (
        ("none", None),
        ("healthy webhook", f"json://127.0.0.1:{healthy.server_address[1]}/"),
        ("dead webhook", f"json://127.0.0.1:{dead.server_address[1]}/"),
    ):
        lat, ordered, n = replay(bars, urls)
        t.add_row(name, *(f"{np.percentile(lat, q):.2f}" for q in (50, 99)), f"{lat.max():.2f}",
                  *(f"{np.percentile(ordered, q):.2f}" for q in (50, 99)), str(n))  # fmt: skip
    Console().print(t)
    print(json.dumps({"healthy_webhook_messages": healthy.got}))


if __name__ == "__main__":
    main()
