"""Operations as shipped in deploy/: the Prometheus configuration, alert rules and their promtool unit tests, the
Alertmanager configuration, a real Prometheus and Alertmanager (Debian packages) firing TradelabRunnerDown at a local
webhook when a supervised run is killed (and resolving it when the supervisor restarts it), the Grafana dashboard's
queries asked of that Prometheus, the compose file through docker-compose, the systemd units through systemd-analyze,
and the digest of real runs from the command line."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from test_runner import TRADELAB, _free_port, cli, data_dir, run_args  # noqa: F401 (data_dir: a fixture)

from tradelab.store import open_store

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"


def need(tool: str, require_env: str) -> str:
    "The tool's path; a skip when it is missing, a failure when CI says it must be there."
    path = shutil.which(tool)
    if path is None:
        if os.environ.get(require_env):
            pytest.fail(f"{tool} is not installed ({require_env} is set)")
        pytest.skip(f"{tool} is not installed")
    return path


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.25)


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:  # e.g. Prometheus's plain-text "Service Unavailable" while it starts
            return e.code, {}
    except (OSError, ValueError):
        return None, {}


# -- the shipped files, checked by the tools that read them ---------------------------------------------------


def test_promtool_and_amtool_accept_the_shipped_files_and_the_alert_unit_tests_pass():
    promtool = need("promtool", "TRADELAB_REQUIRE_PROMETHEUS")
    for args in (
        ["check", "config", "prometheus/prometheus.yml"],
        ["check", "rules", "prometheus/alerts.yml"],
        ["test", "rules", "prometheus/alerts_test.yml"],
    ):
        r = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, text=True)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    amtool = need("amtool", "TRADELAB_REQUIRE_PROMETHEUS")
    r = subprocess.run(
        [amtool, "check-config", "alertmanager/alertmanager.yml"], cwd=DEPLOY, capture_output=True, text=True
    )
    assert r.returncode == 0, (r.stdout, r.stderr)
    names = {
        rule["alert"]
        for g in yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"]
        for rule in g["rules"]
    }
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / "prometheus/alerts_test.yml").read_text()))
    assert names == tested, names ^ tested  # every alert has a unit test
    assert {"TradelabRunnerDown", "TradelabFeedStale", "TradelabBreakerTripped", "TradelabErrorRate",
            "TradelabNotificationBacklog"} <= names  # fmt: skip


# -- a real Prometheus and Alertmanager around a supervised run -----------------------------------------------


class Hook(BaseHTTPRequestHandler):
    "A webhook receiver (Alertmanager's, apprise's json://): keeps each JSON body."

    def do_POST(self):
        self.server.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def _alerts(hook, name: str, status: str) -> list[dict]:
    return [a for msg in hook.got for a in msg["alerts"] if a["labels"]["alertname"] == name and a["status"] == status]


def _prometheus_files(folder: Path, run_port: int, sup_port: int, am_port: int):
    """The shipped prometheus.yml and alerts.yml with test timings: scrapes and evaluations every second and each
    alert's `for` cut to 1 s (the `for` durations themselves are proven by promtool's unit tests). The expressions,
    labels and routing are the shipped ones."""
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"
    (folder / "alerts.yml").write_text(yaml.safe_dump(rules))
    (folder / "targets").mkdir()
    for name, target in (("runs", run_port), ("supervisor", sup_port), ("alertmanager", am_port)):
        (folder / "targets" / f"{name}.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{target}"]}]))


def _alertmanager_file(folder: Path, hook_port: int):
    "The shipped alertmanager.yml, its webhook pointed at the test's receiver and its waits cut to a second."
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1m")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{hook_port}/alerts"
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config))


def _panel_queries() -> list[str]:
    dash = json.loads((DEPLOY / "grafana/dashboards/tradelab.json").read_text())
    uid = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())["datasources"][0][
        "uid"
    ]
    exprs = []
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        exprs += [t["expr"].replace("$instance", ".*") for t in panel["targets"]]
    return exprs


def _exported_names(*ports: int) -> set[str]:
    "Metric names the processes expose (# TYPE lines, so also labelled metrics with no sample yet)."
    names = set()
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            names |= set(re.findall(r"^# TYPE (\w+) ", r.read().decode(), re.M))
    return names


def test_a_killed_run_fires_an_alert_through_alertmanager_and_the_dashboard_queries_answer(data_dir, tmp_path):  # noqa: F811
    prometheus = need("prometheus", "TRADELAB_REQUIRE_PROMETHEUS")
    alertmanager = need("prometheus-alertmanager", "TRADELAB_REQUIRE_PROMETHEUS")
    run_port, sup_port, am_port, prom_port = (_free_port() for _ in range(4))
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.got = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    db = f"sqlite:///{tmp_path}/state.db"
    options = {"strategy": "sma_cross", "params": {"fast": 3, "slow": 8}, "exchange": "binance",
               "symbol": "BTC/USDT", "timeframe": "1h", "start": "2023-01-01", "end": "2023-06-01",
               "speed": 7200, "db": db, "health_port": run_port}  # fmt: skip
    (tmp_path / "supervise.yaml").write_text(yaml.safe_dump({"health_port": sup_port, "runs": {"btc": options}}))
    _prometheus_files(tmp_path, run_port, sup_port, am_port)
    _alertmanager_file(tmp_path, hook.server_address[1])
    env = {**os.environ, "TRADELAB_DATA_DIR": data_dir, "TRADELAB_RESTART_BACKOFF_SECONDS": "12"}
    procs = []
    try:
        sup = subprocess.Popen([TRADELAB, "supervise", str(tmp_path / "supervise.yaml")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(sup)
        procs.append(subprocess.Popen([alertmanager, f"--config.file={tmp_path}/alertmanager.yml",
                                       f"--storage.path={tmp_path}/am", f"--web.listen-address=127.0.0.1:{am_port}",
                                       "--cluster.listen-address="],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        procs.append(subprocess.Popen([prometheus, f"--config.file={tmp_path}/prometheus.yml",
                                       f"--storage.tsdb.path={tmp_path}/tsdb",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(expr: str) -> tuple[str, list]:
            _, body = get_json(f"{api}/query?query={urllib.parse.quote(expr)}")
            return body.get("status"), body.get("data", {}).get("result", [])

        def scraped():
            up = query('up{job=~"tradelab-.*"}')[1]
            bars = query("tradelab_bars_processed_total")[1]
            return len(up) == 2 and all(u["value"][1] == "1" for u in up) and bars and float(bars[0]["value"][1]) > 20

        wait_for(scraped, 90, "Prometheus scraping the run and the supervisor, 20 bars done")
        # the dashboard: every query is valid PromQL on this Prometheus, every metric it names is one the run or
        # the supervisor exports, and the core panels have data
        exported = _exported_names(run_port, sup_port) | {"up"}
        for expr in _panel_queries():
            status, _ = query(expr)
            assert status == "success", expr
            for name in re.findall(r"\b(tradelab_\w+|up)\b(?=\s*[{\[)]|\s*$|\s*[=*])", expr):
                assert re.sub(r"_(bucket|count|sum)$", "", name) in exported, (name, expr)
        for expr in ("tradelab_run_info", "tradelab_equity", "tradelab_supervised_up",
                     'sum by (instance, verdict) (rate(tradelab_decisions_total[5m]))'):  # fmt: skip
            assert wait_for(lambda e=expr: query(e)[1], 30, expr), expr
        # kill -9 the run: Prometheus loses it, Alertmanager tells the webhook
        _, health = get_json(f"http://127.0.0.1:{sup_port}/healthz")
        pid = health["runs"]["btc"]["pid"]
        os.kill(pid, signal.SIGKILL)
        fired = wait_for(lambda: _alerts(hook, "TradelabRunnerDown", "firing"), 60, "TradelabRunnerDown at the webhook")
        assert fired[0]["labels"]["job"] == "tradelab-runs" and fired[0]["labels"]["severity"] == "critical"
        assert "is down" in fired[0]["annotations"]["summary"]
        code, health = get_json(f"http://127.0.0.1:{sup_port}/healthz")
        assert code == 503 or health["runs"]["btc"]["restarts"] == 1, health
        # the supervisor restarts it after its backoff; the same run resumes and the alert resolves
        wait_for(lambda: get_json(f"http://127.0.0.1:{sup_port}/healthz")[0] == 200, 90, "the run restarted, healthy")
        _, health = get_json(f"http://127.0.0.1:{sup_port}/healthz")
        assert health["runs"]["btc"]["restarts"] == 1 and health["runs"]["btc"]["pid"] != pid
        wait_for(lambda: _alerts(hook, "TradelabRunnerDown", "resolved"), 60, "TradelabRunnerDown resolved")
        sup.send_signal(signal.SIGTERM)
        out, err = sup.communicate(timeout=60)
        assert sup.returncode == 0, err[-3000:]
        assert "btc: stopped, exit 0, 1 restarts" in out, out
        assert "Traceback" not in err
        runs = open_store(db).table("runs")
        assert list(runs.status) == ["stopped"] and int(runs.restarts.iloc[0]) >= 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        hook.shutdown()


# -- deployment files ---------------------------------------------------------------------------------------


def _deploy_copy(tmp_path: Path, **values) -> Path:
    "The deploy folder and a .env from .env.example, as a user lays them out, with `values` filled in."
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values else line)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    return tmp_path


FILLED = {"LOCAL_DATA_ROOT": "/srv/tradelab", "GRAFANA_ADMIN_PASSWORD": "pw-for-test", "JUPYTER_TOKEN": "tok",
          "TRADELAB_HEALTH_PORT": "9100"}  # fmt: skip


def test_the_compose_file_reads_every_value_from_env_and_validates_with_docker_compose(tmp_path):
    compose_text = (DEPLOY / "compose.yaml").read_text()
    example = {line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text))
    assert used <= example, used - example  # the .env contract documents every variable the compose file reads
    docker_compose = need("docker-compose", "TRADELAB_REQUIRE_COMPOSE")
    root = _deploy_copy(tmp_path, **FILLED)
    args = [docker_compose, "-f", "deploy/compose.yaml", "--env-file", ".env"]
    profiles = ["--profile", "core", "--profile", "analytics", "--profile", "ml"]
    r = subprocess.run([*args, *profiles, "config"], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    by_profile = {
        p: {n for n, s in services.items() if p in s.get("profiles", [])} for p in ("core", "analytics", "ml")
    }
    assert by_profile["core"] == {"tradelab", "prometheus", "alertmanager"}, by_profile
    assert {"grafana", "jupyter", "reports", "digest"} <= by_profile["analytics"] and by_profile["ml"] == {"ml"}
    for name, s in services.items():
        for volume in s.get("volumes", []):
            host = volume.split(":")[0]
            assert host.startswith("/srv/tradelab/") or host.startswith(str(root)), (name, volume)
        for port in s.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)  # published on this machine only
    assert "/healthz" in " ".join(services["tradelab"]["healthcheck"]["test"])
    assert services["tradelab"]["environment"]["TRADELAB_HEALTH_HOST"] == "0.0.0.0"
    assert all("healthcheck" in services[n] for n in ("tradelab", "prometheus", "alertmanager", "grafana"))
    # a missing value stops compose with the variable's name, as `tradelab config check --for deploy` does
    _deploy_copy(tmp_path / "missing", **{**FILLED, "LOCAL_DATA_ROOT": ""})
    r = subprocess.run([*args, "--profile", "core", "config"], cwd=tmp_path / "missing", capture_output=True, text=True)
    assert r.returncode != 0 and "set LOCAL_DATA_ROOT in .env" in r.stderr, r.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELAB_")}
    r = subprocess.run([TRADELAB, "config", "check", "--for", "deploy"], cwd=tmp_path / "missing", env=env,
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "LOCAL_DATA_ROOT: required by deploy/compose.yaml" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [TRADELAB, "config", "check", "--for", "deploy"], cwd=root, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0 and "valid for deploy" in r.stdout, r.stderr
    assert "pw-for-test" not in r.stdout + r.stderr


def test_systemd_units_verify_and_start_real_commands(tmp_path):
    analyze = shutil.which("systemd-analyze")
    units = sorted((DEPLOY / "systemd").glob("tradelab-*"))
    assert {u.name for u in units} >= {"tradelab-supervise.service", "tradelab-reports.timer", "tradelab-digest.timer"}
    commands = []
    for unit in units:
        text = unit.read_text().replace("%h/tradelab/.venv/bin/tradelab", TRADELAB).replace("%h/tradelab", str(ROOT))
        (tmp_path / unit.name).write_text(text)
        commands += [line.split("=", 1)[1].split() for line in text.splitlines() if line.startswith("ExecStart")]
        if unit.suffix == ".timer":
            assert "[Timer]" in text and "Persistent=true" in text
            service = unit.with_suffix(".service")
            assert service.exists(), f"{unit.name} starts {service.name}, which is missing"
    for argv in commands:  # each names a real command and options it accepts
        sub = [a for a in argv[1:] if not a.startswith("-") and not a.endswith(".yaml")][:2]
        r = subprocess.run([TRADELAB, *sub, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, (argv, r.stderr)
        for option in [a for a in argv if a.startswith("--")]:
            assert option in r.stdout, (argv, option)
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units were read, not verified")
    r = subprocess.run([analyze, "verify", "--man=no", *[str(tmp_path / u.name) for u in units]],
                       capture_output=True, text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})  # fmt: skip
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# -- the digest of real runs --------------------------------------------------------------------------------


def test_the_digest_of_real_runs_from_the_command_line(data_dir, tmp_path):  # noqa: F811
    """Two replays and a run killed mid-way: the digest's P&L per run is the run's equity change as
    `tradelab export` reports it, its fills are the exported fills, the killed run shows downtime, and the
    digest arrives at the webhook."""
    db = f"sqlite:///{tmp_path}/state.db"
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.got = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env = {"TRADELAB_DATA_DIR": data_dir}
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 2))
    cli(*run_args("sma_cross", ["fast=5", "slow=20"], "2023-02-01", "2023-03-01", db), env=env)
    cli(*run_args("sma_cross", ["fast=10", "slow=30"], "2023-02-01", "2023-03-01", db), env=env)
    done = set(open_store(db).table("runs").id)
    slow_args = run_args("sma_cross", ["fast=3", "slow=8"], "2023-05-01", "2023-07-01", db, "--speed", "7200")
    slow = subprocess.Popen(
        [TRADELAB, *slow_args], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def slow_bars() -> int:
        store = open_store(db)
        new = set(store.table("runs").id) - done
        return bool(new) and len(store.table("equity", new.pop())) > 5

    wait_for(slow_bars, 60, "the slow run's first bars")
    slow.kill()
    slow.wait()
    time.sleep(3)  # the killed run stays down: more than the digest's --gap of 1 s without a heartbeat
    out = tmp_path / "digests"
    r = cli("digest", "--since", since, "--db", db, "--out", str(out), "--gap", "1",
            env={**env, "TRADELAB_NOTIFY_URLS": f"json://127.0.0.1:{hook.server_address[1]}/d"})  # fmt: skip
    assert "3 runs" in r.stdout, r.stdout
    md = next(out.glob("digest-*.md")).read_text()
    html = next(out.glob("digest-*.html")).read_text()
    store = open_store(db)
    runs = store.table("runs")
    rows = {
        line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "sma_cross" in line
    }
    for run in runs.itertuples():
        equity = json.loads(cli("export", "--table", "equity", "--format", "ndjson", "--run", run.id, "--db", db,
                                env=env).stdout.splitlines()[-1])["equity"]  # fmt: skip
        cells = [c.strip() for c in rows[run.id].split("|")]
        assert cells[-2] == f"{equity - run.cash:,.2f}", (cells, equity)  # P&L column
        fills = len(store.table("fills", run.id))
        assert f"| {run.id} | BTC/USDT | {fills} |" in md
    killed = runs[runs.status == "running"].id.iloc[0]
    healthy = [c.strip() for c in rows[killed].split("|")][5]
    assert healthy.endswith("%") and float(healthy[:-1]) < 100.0, rows[killed]
    assert "<table>" in html and killed in html
    wait_for(lambda: hook.got, 30, "the digest at the webhook")
    assert hook.got[0]["title"].startswith("tradelab: digest ") and "P&L per symbol" in hook.got[0]["message"]
    hook.shutdown()


def test_notify_test_reports_which_channel_took_the_message(tmp_path):
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.got = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    dead = _free_port()  # nothing listens there
    urls = f"json://127.0.0.1:{hook.server_address[1]}/n json://127.0.0.1:{dead}/n"
    env = {"TRADELAB_NOTIFY_URLS": urls, "TRADELAB_DATA_DIR": str(tmp_path)}
    r = cli("notify", "test", "--wait", "3", "--db", f"sqlite:///{tmp_path}/s.db", env=env, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "json#1: sent" in r.stdout and "json#2: 1 pending" in r.stdout, r.stdout
    assert hook.got and hook.got[0]["title"] == "tradelab: test message"
    assert str(dead) not in r.stdout + r.stderr  # channels are named, never shown by URL
    hook.shutdown()
