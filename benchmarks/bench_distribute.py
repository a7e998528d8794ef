"""Scale-out on Dask, measured on this machine: each workload in this process (numba's threads on every core), then on
a local Dask cluster of 1 and 2 single-threaded worker processes. Wall seconds (the cluster's start-up apart), peak
memory (this process plus every worker, each its own peak), and the cost of one work unit, so that a cluster's speed
can be predicted: time ~ start-up + units x overhead / workers + compute / (workers x per-worker speed).

U   a universe of 100 symbols (a year of 1h bars each, synthetic) x 1,000 sma_cross combinations
G   a 10^6-combination sma_cross grid (1,000 fast x 1,000 slow windows) on a year of 1h bars
O   per-unit overhead: 400 units of one combination on 200 bars each, on one worker, against the same work here

Run: .venv/bin/python benchmarks/bench_distribute.py          (all; about 5 minutes on 2 cores)
     .venv/bin/python benchmarks/bench_distribute.py U O      (only those)
Each (workload, place) runs in a process of its own, so its peak memory is its own.
"""

import json
import os
import resource
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

WORKLOADS = {"U": "100 symbols x 1,000 combinations", "G": "10^6 combinations, one symbol", "O": "per-unit overhead"}
PLACES = ["here", "1 worker", "2 workers"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs(workload: str):
    from tradelab.ohlcv import synthetic_ohlcv

    if workload == "U":
        frames = {f"S{i:03d}/USD": synthetic_ohlcv(8760, "1h", seed=i, start="2023-01-01") for i in range(100)}
        return frames, {"fast": list(range(5, 55)), "slow": list(range(60, 260, 10))}
    if workload == "G":
        return {"SYN/USD": synthetic_ohlcv(8760, "1h", seed=0, start="2023-01-01")}, {
            "fast": list(range(2, 1002)),
            "slow": list(range(1003, 2003)),
        }
    return {"SYN/USD": synthetic_ohlcv(200, "1h", seed=0, start="2023-01-01")}, {
        "fast": [5],
        "slow": list(range(10, 410)),
    }


def one(workload: str, place: str) -> dict:
    "Run one workload in one place; print a JSON line of what was measured."
    from tradelab.distribute import sweep_universe
    from tradelab.sweep import sweep

    frames, grid = inputs(workload)
    sweep(next(iter(frames.values())).iloc[:300], "sma_cross", {"fast": [5], "slow": [20]}, progress=False)  # warm
    out = {"workload": workload, "place": place}
    if place == "here":
        t0 = time.perf_counter()
        if workload == "O":  # the same 400 pieces of work, one after the other in this process
            from tradelab.backtest import Costs
            from tradelab.sweep import sweep_combos, sweep_rows

            frame, combos = next(iter(frames.values())), sweep_combos("sma_cross", grid)
            for c in combos:
                sweep_rows(frame, "sma_cross", [c], Costs(), 10_000.0, None, "crypto", "fused")
            out["units"] = len(combos)
        else:
            table = sweep_universe(frames, "sma_cross", grid, progress=False)
            out["rows"] = len(table)
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = peak_mb()
        return out
    from distributed import Client, LocalCluster

    workers = int(place.split()[0])
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(workers)
            client.run(lambda: __import__("tradelab.sweep"))  # the workers load the kernels once, as in a long job
            out["startup"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            chunk = 1 if workload == "O" else None
            table = sweep_universe(
                frames, "sma_cross", grid, client=client, results_dir=False, chunk=chunk, progress=False
            )
            out["seconds"] = time.perf_counter() - t0
            out["rows"], out["units"] = len(table), table.attrs["units"]
            out["peak_mb"] = peak_mb() + sum(client.run(peak_mb).values())
    return out


def main(selected: list[str]) -> None:
    unknown = [w for w in selected if w not in WORKLOADS]
    if unknown:
        sys.exit(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    console = Console(width=120)
    table = Table(title=f"Scale-out on Dask (this machine: {len(os.sched_getaffinity(0))} cores)")
    for col in ("workload", "where", "units", "start-up s", "wall s", "speed-up vs here", "peak MB", "per unit ms"):
        table.add_column(col, justify="right" if col not in ("workload", "where") else "left")
    for w in selected or list(WORKLOADS):
        base = None
        for place in PLACES:
            r = subprocess.run(
                [sys.executable, __file__, "--one", w, place], capture_output=True, text=True, env=os.environ
            )
            if r.returncode:
                console.print(f"[red]{w} {place} failed[/]\n{r.stderr[-2000:]}")
                continue
            m = json.loads(r.stdout.strip().splitlines()[-1])
            base = m["seconds"] if place == "here" else base
            per_unit = ""
            if w == "O" and place == "1 worker" and base is not None:
                per_unit = f"{(m['seconds'] - base) / m['units'] * 1e3:.2f}"
            table.add_row(
                f"{w} {WORKLOADS[w]}", place, f"{m.get('units', '')}", f"{m['startup']:.1f}" if "startup" in m else "",
                f"{m['seconds']:.2f}", f"{base / m['seconds']:.2f}x" if base else "", f"{m['peak_mb']:.0f}", per_unit,
            )  # fmt: skip
    console.print(table)
    console.print(
        "per unit: (400 one-combination units on one worker - the same work in this process) / 400: what the "
        "scheduler, serialisation and result handling cost each unit",
        highlight=False,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(sys.argv[2], sys.argv[3])))
    else:
        main(sys.argv[1:])
