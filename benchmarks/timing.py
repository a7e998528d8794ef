"Shared timing helper for the benchmark scripts."

import statistics
import time


def timed(fn, repeat: int = 7) -> float:
    "Median seconds of `repeat` calls of `fn`, after one warm-up call (imports, caches, OS file cache)."
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)
