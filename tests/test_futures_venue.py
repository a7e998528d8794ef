"""Shorts through ccxt on a futures venue: `tradelab run --broker ccxt -e binanceusdm` against the Binance USDT-M
futures simulator, the real ccxt client in between. A long/short strategy is short for part of the run, turns around
in one order (one-way mode), and trades at the backtest's times, sides and prices; the venue's position and wallet
agree with the stored fills (worked out here from the fills alone); a spot market refuses the same strategy with the
reason before any order."""

import json

import pandas as pd
from test_runner import BTC_1H, cli, run_args

from tradelab.ohlcv import read_ohlcv_file
from tradelab.sim_binance_futures import BinanceFuturesSimulator
from tradelab.store import open_store

START, END = "2023-05-01", "2023-06-01"
SYMBOL = "BTC/USDT:USDT"
FEE = 0.0005  # the simulator's taker commission (Binance USDT-M regular tier), given to the backtest as its fee


def btc_candles(tmp_path, exchange: str, symbol: str) -> str:
    "A data directory holding the shared BTC 1h candles as `exchange` `symbol`."
    d = str(tmp_path / "candles")
    cli("data", "import", str(BTC_1H), "-e", exchange, "-s", symbol, "-t", "1h", env={"TRADELAB_DATA_DIR": d})
    return d


def test_futures_shorts_through_ccxt_follow_the_backtest(tmp_path):
    d = btc_candles(tmp_path, "binanceusdm", SYMBOL)
    bars = read_ohlcv_file(str(BTC_1H))
    bars = bars[bars.index < pd.Timestamp(END, tz="UTC")]
    market = ["-s", SYMBOL, "-t", "1h", "-e", "binanceusdm", "--start", START, "--end", END]
    market += ["-p", "fast=5", "-p", "slow=20", "-p", "short=true", "--fees", str(FEE), "--slippage", "0"]
    db = f"sqlite:///{tmp_path}/state.db"
    with BinanceFuturesSimulator({SYMBOL: bars}, wallet=10_000.0, start=START) as sim:
        env = {
            "TRADELAB_DATA_DIR": d,
            "TRADELAB_CCXT_API_URL": sim.url,
            "TRADELAB_CCXT_API_KEY": sim.key,
            "TRADELAB_CCXT_SECRET": sim.secret,
            "TRADELAB_CCXT_RECV_WINDOW_MS": "1000",
        }
        r = cli(
            "run", "--strategy", "sma_cross", *market, "--db", db, "--health-port", "-1", "--broker", "ccxt", env=env
        )
        assert "finished" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        last = sim.price(SYMBOL)
    fills = open_store(db).table("fills").sort_values(["time", "fill_id"])
    orders = open_store(db).table("orders")
    assert set(orders.status) == {"filled"}, orders.status.value_counts()
    assert (orders.intent.str.startswith("reverse_")).any(), "a futures venue turns a position around in one order"
    signed = fills.qty.where(fills.side == "buy", -fills.qty)
    path = signed.cumsum()
    assert path.min() < 0 < path.max(), "the run should have been both short and long"
    assert abs(path.iloc[-1] - sim.position(SYMBOL)) < 1e-9
    # the venue's wallet plus unrealized PnL, from the fills' cash flows alone: start, minus what buys paid, plus what
    # sells received, minus commissions, plus the open position at the last price
    flows = -(signed * fills.price).sum() - fills.fee.sum() + path.iloc[-1] * last
    assert abs(10_000.0 + flows - (sim.wallet + sim.unrealized(SYMBOL))) < 1e-6
    assert (fills.fee_currency == "USDT").all()

    doc = json.loads(cli("backtest", "--strategy", "sma_cross", *market, "--json", env={"TRADELAB_DATA_DIR": d}).stdout)
    expected = sorted((r["time"], r["side"], r["price"], r["qty"]) for r in doc["fills"])
    got = []
    for _, one in fills.groupby("client_order_id", sort=False):
        qty = one.qty.sum()
        got.append((one.time.iloc[0].isoformat(), one.side.iloc[0], (one.qty * one.price).sum() / qty, qty))
    got.sort()
    # an order decided on the replay's last bar has no next bar: the backtest never fills it, the venue (whose market
    # stays at the last close once the replay is over) does
    final = orders[orders.bar_time == bars.index[-1]].client_order_id
    assert len(got) - len(expected) == fills.client_order_id.isin(final).any()
    got = got[: len(expected)]
    assert len(expected) > 10
    for g, e in zip(got, expected, strict=True):
        assert pd.Timestamp(g[0]) == pd.Timestamp(e[0]) and g[1] == e[1], (g, e)
        assert abs(g[2] - e[2]) < 1e-6 * e[2], (g, e)  # the next bar's open, as the backtest fills
        # the venue trades whole steps of 0.00001 BTC; a reversal is sized by the runner on the equity at the decision
        # bar's close, before the fee of closing the old position, while the backtest sizes it after that fee, at the
        # fill: the quantities agree to the fees of a reversal and a step
        assert abs(g[3] - e[3]) <= e[3] * 2 * FEE + 1e-5, (g, e)


def test_spot_refuses_shorts_with_the_reason(tmp_path):
    d = btc_candles(tmp_path, "binance", "BTC/USDT")
    from tradelab.sim_binance import BinanceSimulator

    bars = read_ohlcv_file(str(BTC_1H))
    with BinanceSimulator({"BTC/USDT": bars[bars.index < pd.Timestamp(END, tz="UTC")]}, start=START) as sim:
        env = {
            "TRADELAB_DATA_DIR": d,
            "TRADELAB_CCXT_API_URL": sim.url,
            "TRADELAB_CCXT_API_KEY": sim.key,
            "TRADELAB_CCXT_SECRET": sim.secret,
        }
        args = run_args("sma_cross", ["short=true"], START, END, f"sqlite:///{tmp_path}/s.db", "--broker", "ccxt")
        r = cli(*args, env=env, check=False)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert "cannot be sold short" in r.stderr and "BTC/USDT:USDT on binanceusdm" in r.stderr, r.stderr
        assert sim.order_posts() == []
