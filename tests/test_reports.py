"""Report templates run end to end through the CLI (papermill in a real kernel), on real candles."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import quantstats as qs

from tradelab.datastore import CandleStore, import_file

TRADELAB = str(Path(sys.executable).parent / "tradelab")
SHARED = Path(os.environ.get("TRADELAB_TEST_DATA", "../shared/data")).resolve()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    import_file(SHARED / "ohlcv/binance-spot-2024", "binance", store=CandleStore(root / "data"), progress=False)
    return {**os.environ, "TRADELAB_DATA_DIR": str(root / "data"), "TRADELAB_REPORTS_DIR": str(root / "reports")}


def _umask():
    from tradelab.config import current_umask

    return current_umask()


def run(*args, env):
    r = subprocess.run([TRADELAB, *args], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def folder_of(r):
    return Path(r.stdout.strip().split("report written to ")[-1].split()[0])


@pytest.fixture(scope="module")
def backtest_report(env):
    t = time.perf_counter()
    r = run(
        "report",
        "backtest",
        "-p",
        "symbol=BTC/USDT",
        "-p",
        "timeframe=1h",
        "-p",
        "strategy=sma_cross",
        "-p",
        'params={"fast": 10, "slow": 50}',
        "-p",
        "fees=0.001",
        "-p",
        "benchmark=ETH/USDT",
        "--max-age",
        "24",
        env=env,
    )
    took = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    assert "running over TCP" not in r.stderr  # the kernel talks over local sockets
    assert "warning: STALE DATA" in r.stderr  # the CLI says it too, not only the page
    return folder_of(r), took


def test_backtest_report_folder(backtest_report):
    folder, took = backtest_report
    assert folder.name.endswith("_backtest_btc-usdt-sma-cross") and folder.is_dir()
    names = {p.name for p in folder.iterdir()}
    assert {
        "report.ipynb",
        "report.html",
        "tearsheet.html",
        "metrics.json",
        "returns.csv",
        "equity.png",
        "monthly_returns.png",
    } <= names
    print(f"a report on ~8 months of 1h bars took {took:.1f} s")  # timings live in benchmarks/, not in asserts
    html = (folder / "report.html").read_text()
    assert "STALE DATA" in html and "sma_cross on BTC/USDT 1h" in html
    assert "def " not in html and "ReportContext" not in html  # inputs hidden
    assert html.count("<img") == 1 and "monthly returns (compounded)" in html  # equity (PNG), months (SVG)
    for leak in ("Warning", "site-packages", ".venv", ".000000", "{'total_return'"):
        assert leak not in html, leak  # no warnings, library paths, raw floats or dicts in the page
    assert "Buy &amp; hold return" in html and "Closed trades" in html
    assert "Deflated Sharpe ratio" in html or "deflated Sharpe ratio" in html


def test_metrics_equal_quantstats_on_returns_csv(backtest_report):
    folder, _ = backtest_report
    m = json.loads((folder / "metrics.json").read_text())
    r = pd.read_csv(folder / "returns.csv", index_col=0, parse_dates=True)["returns"]
    ppy = m["periods_per_year"]
    assert ppy == 8760 and len(r) > 5000
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=ppy), rel=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=ppy), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(r, periods=ppy), rel=1e-9)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(r, periods=ppy), rel=1e-9)
    o = m["overfit"]
    assert o["trials"] == 1 and 0 <= o["deflated_sharpe"] <= 1
    assert o["monte_carlo"]["final_equity"]["p5"] <= o["monte_carlo"]["final_equity"]["p95"]


def test_overfit_section_with_a_sweep_and_walk_forward(env):
    r = run(
        "report",
        "backtest",
        "-p",
        "symbol=ETH/USDT",
        "-p",
        "timeframe=4h",
        "-p",
        'sweep_grid={"fast": [5, 10], "slow": [20, 50]}',
        "-p",
        "wf_train=60d",
        "-p",
        "wf_test=30d",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    o = json.loads((folder_of(r) / "metrics.json").read_text())["overfit"]
    assert o["trials"] == 4 and 0 <= o["pbo"] <= 1 and o["walkforward_folds"] >= 5
    assert "over 4 trials" in o["verdict"] and "4-combination grid on ETH/USDT 4h" in o["verdict"]
    expected = "not evidence of skill" if o["deflated_sharpe"] < 0.95 else "evidence of skill, not proof"
    assert expected in o["verdict"] or (o["pbo"] > 0.5 and "likely overfit" in o["verdict"])


def test_compare_and_portfolio_templates(env):
    r = run("report", "compare", "-p", "symbol=ETH/USDT", "-p", "timeframe=4h", "-p", "rank_by=sortino", env=env)
    assert r.returncode == 0, r.stderr
    m = json.loads((folder_of(r) / "metrics.json").read_text())
    sortinos = [s["sortino"] for s in m["backtest"].values()]
    assert len(sortinos) == 3 and sortinos == sorted(sortinos, reverse=True)
    assert m["overfit"]["trials"] == 3 and 0 <= m["overfit"]["pbo"] <= 1 and 0 <= m["overfit"]["deflated_sharpe"] <= 1
    assert "Is it overfit?" in (folder_of(r) / "report.html").read_text()
    r = run("report", "portfolio", "-p", 'symbols=["BTC/USDT", "ETH/USDT"]', "-p", "timeframe=1h", env=env)
    assert r.returncode == 0, r.stderr
    assert (folder_of(r) / "tearsheet.html").exists()


def _folders(env):
    root = Path(env["TRADELAB_REPORTS_DIR"])
    return set(root.iterdir()) if root.exists() else set()


def test_bad_strategy_parameters_fail_cleanly_and_leave_nothing(env):
    before = _folders(env)
    r = run(
        "report",
        "backtest",
        "-p",
        "symbol=BTC/USDT",
        "-p",
        "timeframe=4h",
        "-p",
        'params={"fast": 50, "slow": 10}',
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert "fast (50) must be smaller than slow (10)" in r.stderr
    assert _folders(env) == before  # no _FAILED or .running folder left
    r = run("report", "backtest", "-p", "timeframe=4h", "-p", "start=last tuesday", env=env)
    assert r.returncode == 2 and "parameter start" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _folders(env) == before  # found before a kernel started: nothing written
    from tradelab.errors import BadInputError
    from tradelab.reports import check_parameters, coerce_parameters

    for bad, named in (  # the same check in-process: what `run_report` does first
        ({"sweep_grid": '{"fast": [50], "slow": [10]}'}, "parameter sweep_grid"),
        ({"wf_train": "60d"}, "give both wf_train and wf_test"),
        ({"strategy": "nope"}, "parameter strategy: unknown strategy 'nope'"),
        ({"cash": "-5"}, "parameter cash"),
        ({"calendar": "moon"}, "parameter calendar"),
        ({"end": "2024-01-01", "start": "2024-02-01"}, "must be before end"),
    ):
        with pytest.raises(BadInputError, match=named.replace("(", r"\(")):
            check_parameters("backtest", coerce_parameters("backtest", bad))
    with pytest.raises(BadInputError, match="parameter strategies"):
        check_parameters("compare", {"strategies": '["sma_cross", "nope"]'})
    with pytest.raises(BadInputError, match="parameter symbols"):
        check_parameters("portfolio", {"symbols": "[]"})


def test_data_not_stored_is_named_before_any_kernel_starts(env):
    before = _folders(env)
    r = run("report", "backtest", "-p", "symbol=BTC/USTD", env=env)
    assert r.returncode == 2 and "did you mean BTC/USDT?" in r.stderr, r.stderr
    r = run("report", "backtest", "-p", "symbol=BTC/USDT", "-p", "timeframe=2h", env=env)
    assert r.returncode == 2 and "data resample" in r.stderr and "--to 2h" in r.stderr, r.stderr
    assert _folders(env) == before


def test_readme_command_with_default_relative_dirs(tmp_path):
    """The README's report command with the defaults TRADELAB_DATA_DIR=./data and TRADELAB_REPORTS_DIR=./reports,
    run from a project folder: the kernel runs inside the report folder, yet reads ./data of the user's folder."""
    e = {
        k: v for k, v in os.environ.items() if k not in ("TRADELAB_DATA_DIR", "TRADELAB_REPORTS_DIR", "TRADELAB_DB_URL")
    }
    src = SHARED / "ohlcv/binance-spot-2024/BTC_USDT-4h.feather"
    r = subprocess.run(
        [TRADELAB, "data", "import", str(src)], capture_output=True, text=True, env=e, cwd=tmp_path, timeout=300
    )
    assert r.returncode == 0 and (tmp_path / "data/binance/BTC_USDT/4h.parquet").exists(), r.stderr
    r = subprocess.run(
        [TRADELAB, "report", "backtest", "-p", "symbol=BTC/USDT", "-p", "timeframe=4h", "-p", "strategy=sma_cross"],
        capture_output=True,
        text=True,
        env=e,
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    folders = list((tmp_path / "reports").iterdir())
    assert len(folders) == 1 and (folders[0] / "report.html").exists() and not folders[0].name.endswith("_FAILED")
    assert oct((folders[0] / "metrics.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_require_fresh_fails_on_old_data(env):
    r = run("report", "backtest", "-p", "symbol=BTC/USDT", "--require-fresh", "--max-age", "24", env=env)
    assert r.returncode != 0 and "STALE DATA" in r.stderr


def test_bad_parameter_is_a_clear_error(env):
    r = run("report", "backtest", "-p", "symbl=BTC/USDT", env=env)
    assert r.returncode == 2 and "no parameter 'symbl'" in r.stderr


def test_batch_runs_every_report_and_counts_failures(env, tmp_path):
    batch = tmp_path / "nightly.yaml"
    batch.write_text("""
- name: backtest
  params: {symbol: ETH/USDT, timeframe: 4h, strategy: rsi_mean_reversion}
- name: backtest
  params: {symbol: NOPE/USDT, timeframe: 4h}
- name: compare
  params: {symbol: BTC/USDT, timeframe: 1d}
""")
    r = run("report", "batch", str(batch), env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.count("ok ") + r.stdout.count("ok\u00a0") >= 2 and "2 of 3 reports written" in r.stdout
    assert "NOPE/USDT" in r.stderr


def test_papermill_lists_parameters_with_types():
    from tradelab.reports import TEMPLATES

    r = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), "--help-notebook", str(TEMPLATES / "backtest.ipynb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in ("symbol: str", "fees: float", "require_fresh: bool", "params: str"):
        assert line in r.stdout


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("TRADELAB_REQUIRE_BROWSER"), reason="chromium not installed")
def test_report_html_in_headless_chromium(backtest_report, tmp_path):
    assert CHROMIUM, "TRADELAB_REQUIRE_BROWSER is set but chromium is not installed"
    folder, _ = backtest_report
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    for page in ("report.html", "tearsheet.html"):
        url = (folder / page).resolve().as_uri()
        dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        assert "<img" in dom or "<svg" in dom, f"{page}: no plots in the rendered page"
        assert "Traceback" not in dom and 'jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr' not in dom
        shot = tmp_path / f"{page}.png"
        subprocess.run(
            [CHROMIUM, *flags, "--window-size=1280,2000", f"--screenshot={shot}", url], capture_output=True, timeout=120
        )
        from PIL import Image, ImageStat

        img = Image.open(shot).convert("L")
        assert max(ImageStat.Stat(img).stddev) > 10, f"{page}: the screenshot is blank"
    assert dom.count("<img") + dom.count("<svg") >= 2
