"""The dashboard and the API on a run with a year of 1m decisions (525,600 bars of synthetic BTC/USDT written by the
real runner through the paper broker into SQLite): each API endpoint's latency p50/p99 over repeated requests (the
first, cold request apart), beside /healthz as the floor; and the dashboard's first paint and complete render
(chart, tables) in headless Chromium, cold and warm.
Run: .venv/bin/python benchmarks/bench_dashboard.py [--bars N] [--db URL]   (the database is kept and reused)
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

TRADELAB = str(Path(sys.executable).parent / "tradelab")


def build(db: str, bars: int):
    "A run of `bars` 1m bars written by the runner (skipped when the database already holds it)."
    from tradelab.brokers import PaperBroker
    from tradelab.data import synthetic_ohlcv
    from tradelab.feeds import ReplayFeed
    from tradelab.runner import Runner, RunSpec
    from tradelab.store import open_store

    store = open_store(db)
    candles = synthetic_ohlcv(bars, "1m", seed=3)
    spec = RunSpec("sma_cross", "synthetic", "BTC/USDT", "1m", {"fast": 20, "slow": 120}, start=str(candles.index[0]),
                   fees=0.001, risk={"max_drawdown": 0.1})  # fmt: skip
    if len(store.table("runs")) and store.run_summary(spec.run_id)["equity"] is not None:
        return spec.run_id
    t = time.perf_counter()
    Runner(spec, store, PaperBroker(store, spec.run_id, spec.cash, spec.costs), ReplayFeed(candles, "1m")).run()
    print(f"wrote {bars:,} bars in {time.perf_counter() - t:.0f} s")
    return spec.run_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> float:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=525_600)
    ap.add_argument("--db", default=f"sqlite:///{tempfile.gettempdir()}/tradelab-bench-dashboard.db")
    ap.add_argument("--repeat", type=int, default=200)
    a = ap.parse_args()
    run_id = build(a.db, a.bars)
    port = free_port()
    env = {**os.environ, "TRADELAB_API_TOKEN": "bench-token", "TRADELAB_API_RATE_LIMIT_PER_MINUTE": "1000000"}
    proc = subprocess.Popen([TRADELAB, "dashboard", "--port", str(port), "--db", a.db], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    proc.stdout.readline()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            get(f"{base}/healthz", "")
            break
        except OSError:
            time.sleep(0.1)
    console = Console()
    table = Table(title=f"API on a run of {a.bars:,} 1m bars (ms; {a.repeat} requests each after the first)")
    for col in ("endpoint", "first (cold)", "p50", "p99", "max"):
        table.add_column(col, justify="right" if col != "endpoint" else "left")
    paths = ["/healthz", "/v1/runs", f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/equity", f"/v1/runs/{run_id}/risk",
             f"/v1/runs/{run_id}/decisions?limit=100", f"/v1/runs/{run_id}/decisions?verdict=refused&limit=50",
             f"/v1/runs/{run_id}/fills?limit=100", f"/v1/runs/{run_id}/orders?open=true",
             f"/v1/runs/{run_id}/events?limit=30"]  # fmt: skip
    try:
        for path in paths:
            first = get(base + path, "bench-token")
            ms = np.array([get(base + path, "bench-token") for _ in range(a.repeat)]) * 1e3
            table.add_row(path.replace(run_id, "{run}"), f"{first * 1e3:.1f}", f"{np.percentile(ms, 50):.1f}",
                          f"{np.percentile(ms, 99):.1f}", f"{ms.max():.1f}")  # fmt: skip
        console.print(table)
        browser = shutil.which("chromium")
        if browser is None:
            console.print("chromium is not installed: no first-paint measurement")
            return
        from playwright.sync_api import sync_playwright

        paint = Table(title="Dashboard in headless Chromium (ms from navigation)")
        for col in ("load", "first contentful paint", "complete (chart and tables)"):
            paint.add_column(col, justify="right")
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=browser, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                 "--disable-background-networking"])  # fmt: skip
            loads = []
            for i in range(6):
                page = b.new_page(viewport={"width": 1400, "height": 1900})
                page.goto(f"{base}/?token=bench-token")
                page.wait_for_selector("#app[data-loaded=yes]", timeout=120_000)
                fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
                done = page.evaluate("performance.now()")
                loads.append((fcp, done))
                paint.add_row("first (new browser cache)" if i == 0 else f"#{i + 1}", f"{fcp:.0f}", f"{done:.0f}")
                page.close()
            b.close()
        warm = loads[1:]
        paint.add_row("median of the warm loads", f"{statistics.median(f for f, _ in warm):.0f}",
                      f"{statistics.median(d for _, d in warm):.0f}")  # fmt: skip
        console.print(paint)
        console.print(
            "complete = the page's own clock when the first refresh finished (chart drawn, tables filled); it includes "
            "parsing plotly.min.js (3.5 MB) on the first load"
        )
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
