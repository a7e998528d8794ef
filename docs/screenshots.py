"""Screenshots for the guides, taken in headless Chromium from what tradelab really produces.

On the shared BTC/USDT hourly candles, in a throw-away workspace: the HTML report `tradelab report backtest`
writes, a sweep's heatmap as a notebook shows it, and `tradelab status` after a replayed paper run. The dashboard's
screenshot (nbs/images/dashboard.jpg) comes from tests/test_dashboard.py's browser session. The images are kept in
nbs/images/ (the guides link them, the site copies them); run this again when what they show changes:

    .venv/bin/python docs/screenshots.py
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "nbs" / "images"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]
PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font: 14px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; background: #fff; }}
</style></head><body>{body}</body></html>"""


def shoot(page: Path, target: Path, width: int, height: int) -> Path:
    "A JPEG of the page's top `height` pixels, as Chromium draws it."
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("error: chromium is not installed (apt-get install chromium)")
    png = page.with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        flags = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}"]
        subprocess.run([chromium, *flags, page.as_uri()], capture_output=True, timeout=180, check=True)
    buffer = io.BytesIO()
    Image.open(png).convert("RGB").save(buffer, "JPEG", quality=72, optimize=True)
    target.write_bytes(buffer.getvalue())
    return target


def main() -> int:
    workspace = Path(tempfile.mkdtemp(prefix="tradelab-shots-"))
    os.environ["TRADELAB_DATA_DIR"] = str(workspace / "data")
    os.environ["TRADELAB_REPORTS_DIR"] = str(workspace / "reports")
    sample = Path(os.environ.get("TRADELAB_SAMPLE_DIR", ROOT.parent / "shared/data/ohlcv/binance-spot-btc-1h"))
    sys.path.insert(0, str(ROOT))
    from rich.console import Console
    from rich.text import Text

    from tradelab.datastore import import_file, load
    from tradelab.reports import run_report
    from tradelab.runner import RunSpec, build_runner
    from tradelab.sweep import sweep

    import_file(sample / "BTC_USDT-1h.feather", "binance", progress=False)
    params = {"symbol": "BTC/USDT", "strategy": "sma_cross", "params": json.dumps({"fast": 20, "slow": 100}),
              "start": "2021-01-01", "end": "2023-01-01", "fees": 0.001, "slippage": 0.0005}  # fmt: skip
    folder = run_report("backtest", params, progress=False)
    shoot(folder / "report.html", IMAGES / "report.jpg", 1280, 1500)

    candles = load("binance", "BTC/USDT", "1h", "2021-01-01", "2023-01-01")
    grid = {"fast": [5, 10, 20, 30, 50], "slow": [60, 100, 150, 200, 300]}
    table = sweep(candles, "sma_cross", grid, progress=False)
    (workspace / "sweep.html").write_text(PAGE.format(body=table._repr_html_()))
    shoot(workspace / "sweep.html", IMAGES / "sweep_heatmap.jpg", 1500, 560)

    spec = RunSpec("sma_cross", "binance", "BTC/USDT", "1h", {"fast": 20, "slow": 100}, start="2023-01-01",
                   end="2023-07-01", fees=0.001, slippage=0.0005)  # fmt: skip
    runner = build_runner(spec, db=f"sqlite:///{workspace}/state.db")
    runner.run()
    tradelab = Path(sys.executable).with_name("tradelab")
    env = {**os.environ, "COLUMNS": "230", "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    shown = subprocess.run([tradelab, "status", "--db", f"sqlite:///{workspace}/state.db"], capture_output=True,
                           text=True, env=env, check=True).stdout  # fmt: skip
    console = Console(record=True, width=230, file=io.StringIO())
    console.print("[bold]$ tradelab status[/bold]")
    console.print(Text.from_ansi(shown))
    (workspace / "status.html").write_text(console.export_html(inline_styles=True))
    shoot(workspace / "status.html", IMAGES / "status.jpg", 2050, 230)
    shutil.rmtree(workspace, ignore_errors=True)
    print(f"wrote {', '.join(p.name for p in sorted(IMAGES.glob('*.jpg')))} in {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
