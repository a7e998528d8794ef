"""Results display themselves without making anyone wait: on a year of 1m bars (525,600, synthetic), the notebook
display of a backtest (statistics and the SVG equity/drawdown chart), its interactive plotly figure, a sweep's
heatmap display and the terminal's stats table, beside the backtest that produced them and beside drawing the same
curve with matplotlib (what a report's PNG costs). Medians of 7 runs after a warm-up, side by side in one run.
Run: .venv/bin/python benchmarks/bench_display.py
"""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from timing import timed  # noqa: E402

from tradelab.backtest import backtest  # noqa: E402
from tradelab.cli_common import stats_table  # noqa: E402
from tradelab.data import synthetic_ohlcv  # noqa: E402
from tradelab.display import reduce_series  # noqa: E402
from tradelab.sweep import sweep  # noqa: E402


def main():
    bars = synthetic_ohlcv(525_600, "1m", seed=1)
    result = backtest(bars, "sma_cross", {"fast": 50, "slow": 400})
    table = sweep(bars, "sma_cross", {"fast": [10, 20, 50, 100], "slow": [200, 400, 800]}, progress=False)
    sink = Console(file=io.StringIO(), width=80)

    def matplotlib_png(reduced: bool):
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.plot(*(reduce_series(result.equity, 1200) if reduced else (result.equity.index, result.equity)), lw=1)
        fig.savefig(io.BytesIO(), dpi=110)
        plt.close(fig)

    rows = {
        "backtest (vectorbt, the reference)": timed(lambda: backtest(bars, "sma_cross", {"fast": 50, "slow": 400}), 3),
        "result._repr_html_() (stats + SVG)": timed(result._repr_html_),
        "result.plot() (plotly figure)": timed(result.plot),
        "sweep table._repr_html_() (heatmap)": timed(table._repr_html_),
        "stats_table at 80 columns": timed(lambda: sink.print(stats_table(result.stats, "sma_cross"))),
        "matplotlib PNG of every point": timed(lambda: matplotlib_png(False), 3),
        "matplotlib PNG, reduced (reports)": timed(lambda: matplotlib_png(True), 3),
    }
    base = rows["backtest (vectorbt, the reference)"]
    t = Table(title=f"displaying a result of {len(bars):,} 1m bars ({len(result.trades):,} trades)")
    t.add_column("what")
    t.add_column("median ms", justify="right")
    t.add_column("x backtest", justify="right")
    for k, v in rows.items():
        t.add_row(k, f"{v * 1e3:,.1f}", f"{v / base:.3f}")
    Console().print(t)
    print(f"the notebook display is {len(result._repr_html_()) / 1024:,.0f} KB of HTML")


if __name__ == "__main__":
    main()
