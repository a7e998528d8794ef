"""Notifications from a real run: `tradelab run` (a replay through the paper broker) with a webhook and an SMTP server
on 127.0.0.1 as channels, reached through apprise. The run's start, fills and stop arrive, batched; a channel that
hangs does not stop the run, and what it did not take is sent by the next start of the run, once."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from test_runner import cli, data_dir, run_args  # noqa: F401 (data_dir: a fixture)

from tradelab.store import open_store

START, END = "2023-02-01", "2023-03-01"
PARAMS = ["fast=5", "slow=20"]
QUICK = {"TRADELAB_NOTIFY_BATCH_SECONDS": "0.2", "TRADELAB_NOTIFY_MIN_INTERVAL_SECONDS": "0.5"}


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.hang.is_set():  # a channel that takes the connection and never answers in time
            time.sleep(8)
            return
        self.server.got.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def webhook() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    server.got, server.hang = [], threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode())
        return "250 OK"


def test_a_run_notifies_by_webhook_and_email(data_dir, tmp_path):  # noqa: F811
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    hook = webhook()
    urls = f"json://127.0.0.1:{hook.server_address[1]}/n, mailto://127.0.0.1:{port}?from=bot@example.com&to=ops@example.com&mode=insecure"
    db = f"sqlite:///{tmp_path}/state.db"
    env = {"TRADELAB_DATA_DIR": data_dir, "TRADELAB_NOTIFY_URLS": urls, **QUICK}
    try:
        cli(*run_args("sma_cross", PARAMS, START, END, db, *sum((["-p", p] for p in PARAMS), [])), env=env)
    finally:
        smtp.stop()
    text = " ".join(m["title"] + " " + m["message"] for m in hook.got)
    assert "run started" in text and "run stopped" in text and "fill" in text, text[:2000]
    fills = open_store(db).table("fills")
    assert len(fills) >= 2
    assert all(f"client_order_id={c}" in text for c in fills.client_order_id), "a fill was not notified"
    assert box.messages and "run stopped" in box.messages[-1]
    outbox = open_store(db).table("notifications")
    assert set(outbox.status) == {"sent"} and set(outbox.channel) == {"json#1", "mailto#2"}
    assert "127.0.0.1" not in outbox.to_csv()  # channels are named, never written down with their URLs


def test_a_hanging_channel_neither_stops_the_run_nor_loses_its_notices(data_dir, tmp_path):  # noqa: F811
    hook = webhook()
    hook.hang.set()
    db = f"sqlite:///{tmp_path}/state.db"
    env = {
        "TRADELAB_DATA_DIR": data_dir,
        "TRADELAB_NOTIFY_URLS": f"json://127.0.0.1:{hook.server_address[1]}/",
        **QUICK,
    }
    args = run_args("sma_cross", PARAMS, START, END, db)
    r = cli(*args, env=env)
    assert "finished" in r.stdout
    pending = open_store(db).table("notifications")
    assert (pending.status == "pending").any(), "the hanging channel took nothing: its notices wait in the outbox"
    hook.hang.clear()
    cli(*args, env=env)  # the same command again: the run resumes (nothing left to replay) and its sender runs
    titles = [m["title"] + " " + m["message"] for m in hook.got]
    sent = open_store(db).table("notifications")
    assert set(sent.status) == {"sent"}, sent[["event", "status", "attempts"]]
    first_start = pending.body[pending.event == "start"].iloc[0]  # the first start's notice: resumed=False
    assert "resumed=False" in first_start
    assert sum(t.count("resumed=False") for t in titles) == 1, "the first start's notice sent twice, or never"
