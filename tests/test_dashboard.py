"""`tradelab dashboard` in a real browser: Debian's headless Chromium, driven by Playwright through its executable
path, loads the dashboard over a database written by a real replay (`tradelab run` with a drawdown limit, so that
entries are refused) and shows what the database holds: the equity chart's points, the fills, the refusal reasons;
it refreshes when the kill switch is set from the command line; the running app serves docs/openapi/v1.json."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_runner import TRADELAB, _free_port, cli, data_dir, run_args  # noqa: F401 (data_dir: a fixture)

from tradelab.store import open_store

ROOT = Path(__file__).parents[1]
CHART = """(() => {
    const d = document.getElementById("equity-chart").data;
    return {n: d[0].y.length, last: d[0].y.at(-1), first: d[0].x[0], dd: Math.min(...d[1].y)};
})()"""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("TRADELAB_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (TRADELAB_REQUIRE_BROWSER is set)")
        pytest.skip("chromium is not installed")
    return path


def start_dashboard(db: str, reports: Path, env: dict) -> tuple[subprocess.Popen, str]:
    "`tradelab dashboard` on a free port; returns the process and the address it printed (with its token)."
    port = _free_port()
    p = subprocess.Popen(
        [TRADELAB, "dashboard", "--port", str(port), "--db", db, "--reports-dir", str(reports), "--refresh", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = p.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
    assert m, (line, p.stderr.read() if p.poll() is not None else "")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return p, m.group(1)
        except OSError:
            assert time.monotonic() < deadline and p.poll() is None, "the dashboard did not start"
            time.sleep(0.2)


def test_the_dashboard_shows_what_the_database_holds(data_dir, tmp_path):  # noqa: F811
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    db = f"sqlite:///{tmp_path}/state.db"
    (tmp_path / "risk.yaml").write_text("max_daily_loss: 0.005\n")
    env = {"TRADELAB_DATA_DIR": data_dir}
    cli(
        *run_args(
            "sma_cross", ["fast=5", "slow=20"], "2023-02-01", "2023-04-01", db, "--risk", str(tmp_path / "risk.yaml")
        ),
        env=env,
    )
    store = open_store(db)
    (run_id,) = store.table("runs").id
    equity = store.table("equity", run_id)
    fills = store.table("fills", run_id)
    decisions = store.table("decisions", run_id)
    refused = decisions[decisions.verdict == "refused"]
    assert len(refused) and len(fills) >= 10, (len(refused), len(fills))
    reports = tmp_path / "reports"
    (reports / "btc").mkdir(parents=True)
    (reports / "btc" / "report.html").write_text("<html><body>the btc report</body></html>")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELAB_API")} | env
    dash, url = start_dashboard(db, reports, child_env)
    try:
        with urllib.request.urlopen(url.split("?")[0] + "openapi.json", timeout=10) as r:
            served = json.loads(r.read())
        assert served == json.loads((ROOT / "docs/openapi/v1.json").read_text())  # the document kept in docs/
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.goto(url)
            page.wait_for_selector("#app[data-loaded=yes]", timeout=60_000)
            assert "token" not in page.url  # the token left the address bar
            chart = page.evaluate(CHART)
            assert chart["n"] == len(equity) <= 2000, chart  # every bar: fewer than the chart's points
            assert abs(chart["last"] - equity.equity.iloc[-1]) < 1e-6, chart
            assert chart["first"].startswith(equity.bar_time.iloc[0].strftime("%Y-%m-%dT%H:%M"))
            assert abs(chart["dd"] - (equity.equity / equity.equity.cummax() - 1).min()) < 1e-6
            runs_text = page.inner_text("#runs-table")
            assert run_id in runs_text and f"{equity.equity.iloc[-1]:,.2f}" in runs_text
            fills_rows = page.locator("#fills-table tr").count() - 1
            assert fills_rows == min(20, len(fills))
            newest = fills.sort_values("id").iloc[-1]
            assert f"{newest.price:,.2f}" in page.inner_text("#fills-table tr:nth-child(2)")
            refusals_text = page.inner_text("#refusals-table")
            for reason in refused.sort_values("id").reason.iloc[-50:].unique():
                assert reason in refusals_text, reason
            assert "kill switch: no" in page.inner_text("#risk-flags")
            assert "score" not in page.inner_text("#decisions-table tr:first-child")  # no model, no score column
            assert "btc/report.html" in page.inner_text("#reports-list")
            with page.expect_popup() as popup:
                page.click("#reports-list a")
            assert "the btc report" in popup.value.content()  # served with the cookie the page set
            # the kill switch set from the command line shows at the next refresh
            cli("kill", run_id, "--wait", "0", "--db", db, env=env)
            page.wait_for_function("document.getElementById('risk-flags').innerText.includes('kill switch: YES')",
                                   timeout=30_000)  # fmt: skip
            page.screenshot(path=str(tmp_path / "dashboard.jpg"), full_page=True, type="jpeg", quality=70)
            assert (tmp_path / "dashboard.jpg").stat().st_size > 50_000  # the docs' nbs/images/dashboard.jpg is one
            # without a token the page asks for one and shows nothing
            fresh = browser.new_page()
            fresh.goto(url.split("?")[0])
            fresh.wait_for_selector("#login:not([hidden])")
            assert fresh.locator("#app").is_hidden()
            browser.close()
    finally:
        dash.terminate()
        dash.wait(30)
    assert dash.returncode in (0, -15), dash.stderr.read()[-2000:]
    assert "Traceback" not in dash.stderr.read()


def test_a_learned_strategys_decisions_show_the_models_score_and_hash(data_dir, tmp_path):  # noqa: F811
    browser_path = chromium()
    from playwright.sync_api import sync_playwright
    from test_runner import BTC_1H

    from tradelab.dataset import build_dataset
    from tradelab.models import train_model
    from tradelab.ohlcv import read_ohlcv_file

    bundle = train_model(build_dataset(read_ohlcv_file(BTC_1H).loc["2022-06":"2022-12"], "direction", 24))
    folder = bundle.save(tmp_path / "bundle")
    db = f"sqlite:///{tmp_path}/state.db"
    env = {"TRADELAB_DATA_DIR": data_dir}
    cli(*run_args(f"model:{folder}", ["entry=0.5", "exit=0.48"], "2023-01-01", "2023-01-10", db), env=env)
    store = open_store(db)
    (run_id,) = store.table("runs").id
    newest = store.table("decisions", run_id).sort_values("id").iloc[-1]
    assert newest.model == bundle.hash and newest.score == newest.score  # a score, not NaN, on the last bar
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELAB_API")} | env
    dash, url = start_dashboard(db, tmp_path / "reports", child_env)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(url)
            page.wait_for_selector("#app[data-loaded=yes]", timeout=60_000)
            header = page.inner_text("#decisions-table tr:first-child").split("\t")
            cells = page.inner_text("#decisions-table tr:nth-child(2)").split("\t")
            row = dict(zip([h.strip() for h in header], [c.strip() for c in cells], strict=True))
            assert row["score"] == f"{newest.score:.4f}" and row["model"] == bundle.hash[:12], row
            browser.close()
    finally:
        dash.terminate()
        dash.wait(30)
    assert "Traceback" not in dash.stderr.read()


def test_the_api_reads_postgresql_through_a_read_only_engine(data_dir):  # noqa: F811
    url = os.environ.get("TRADELAB_TEST_PG_URL")
    if not url:
        if os.environ.get("TRADELAB_REQUIRE_PG"):
            pytest.fail("TRADELAB_TEST_PG_URL is not set although CI started PostgreSQL")
        pytest.skip("no PostgreSQL server here (CI starts one and sets TRADELAB_TEST_PG_URL)")
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from tradelab.api import create_app
    from tradelab.store import reader_of

    cli(
        *run_args("sma_cross", ["fast=7", "slow=33"], "2023-02-01", "2023-03-01", url),
        env={"TRADELAB_DATA_DIR": data_dir},
    )
    store = open_store(url)
    runs = store.table("runs")
    run_id = runs[runs.params.str.contains('"fast": 7')].id.iloc[-1]
    client = TestClient(create_app(store, "pg-token", "pg-admin"))
    auth = {"Authorization": "Bearer pg-token"}
    (mine,) = [r for r in client.get("/v1/runs", headers=auth).json() if r["id"] == run_id]
    assert mine["equity"] == store.table("equity", run_id).equity.iloc[-1]
    seen, cursor = [], None
    while True:
        got = client.get(f"/v1/runs/{run_id}/decisions", params={"limit": 200, "cursor": cursor}, headers=auth).json()
        seen += [d["id"] for d in got["items"]]
        if not (cursor := got["next_cursor"]):
            break
    assert seen == sorted(store.table("decisions", run_id).id, reverse=True)
    kill = client.post(f"/v1/runs/{run_id}/kill", headers={"Authorization": "Bearer pg-admin"})
    assert kill.status_code == 200 and bool(store.table("runs").set_index("id").kill_requested[run_id])
    with pytest.raises(sa.exc.DBAPIError, match="read-only"):  # the dashboard's engine cannot write
        with reader_of(store).engine.begin() as c:
            c.execute(sa.text("UPDATE runs SET restarts = restarts + 1"))
