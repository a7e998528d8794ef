"""The package's import structure, read from the source (top-level imports and those inside functions alike):
no cycles, no computed imports of its own modules, and dependencies that point one way only."""

import ast
from pathlib import Path

PKG = Path(__file__).parents[1] / "tradelab"
RESEARCH = {
    "backtest", "simulate", "riskbacktest", "results", "sweep", "validation", "reports", "distribute", "optimize",
    "model_validation",
}  # fmt: skip
LIVE = {
    "store",
    "brokers",
    "runner",
    "feeds",
    "decide",
    "ledger",
    "health",
    "notify",
    "digest",
    "supervise",
    "monitor",
    "api",
    "dashboard",
}
NEUTRAL = {"config", "errors", "costs", "venues", "portfolio", "sessions", "display", "jit"}


def imports_of(path: Path) -> set[str]:
    "The tradelab modules a file imports, wherever in the file the import statement is."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from . import x
                base = node.module.split(".")[0] if node.module else None
                out |= {base} if base else {a.name for a in node.names if (PKG / f"{a.name}.py").exists()}
            elif node.module and node.module.split(".")[0] == "tradelab":
                parts = node.module.split(".")
                if len(parts) > 1:
                    out.add(parts[1])
                else:
                    out |= {a.name for a in node.names if (PKG / f"{a.name}.py").exists()}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tradelab.")}
    return out - {"__init__"}


GRAPH = {p.stem: imports_of(p) for p in PKG.glob("*.py") if p.stem not in ("_modidx", "__init__")}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for m in GRAPH.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_the_walker_sees_imports_inside_functions():
    src = "def f():\n    from tradelab.sweep import sweep\n    from .cli import app\n    import tradelab.store\n"
    tmp = PKG.parent / "tests" / "_walker_probe.py"
    tmp.write_text(src)
    try:
        assert imports_of(tmp) == {"sweep", "cli", "store"}
    finally:
        tmp.unlink()


def test_no_import_cycles():
    cycles = sorted(m for m in GRAPH if m in reachable(m))
    assert not cycles, {m: sorted(GRAPH[m]) for m in cycles}


def test_no_computed_imports_of_own_modules():
    for p in PKG.glob("*.py"):
        text = p.read_text()
        for bad in ("importlib.import_module", "__import__(", "def __getattr__(name"):
            assert bad not in text or p.stem == "_modidx", f"{p.name} uses {bad}"


def test_live_code_never_reaches_research_code():
    for m in LIVE:
        assert not reachable(m) & RESEARCH, (m, sorted(reachable(m) & RESEARCH))


def test_neutral_modules_import_neither_side():
    for m in NEUTRAL:
        assert not reachable(m) & (RESEARCH | LIVE | CLI), (m, sorted(reachable(m)))


CLI = {m for m in GRAPH if m == "cli" or m.startswith("cli_")}
CLI_AUDIENCES = {"cli_data", "cli_research", "cli_live", "cli_ops"}


def test_nothing_imports_the_cli_and_shipped_code_never_imports_the_fakes():
    assert CLI_AUDIENCES <= CLI and GRAPH["cli"] >= CLI_AUDIENCES | {"cli_common"}
    for m, deps in GRAPH.items():
        assert "cli" not in deps, m
        if m not in CLI:
            assert not deps & CLI, (m, sorted(deps & CLI))
        elif m in CLI_AUDIENCES:  # one audience's commands never reach into another's
            assert deps & CLI == {"cli_common"}, (m, sorted(deps & CLI))
        elif m == "cli_common":
            assert not deps & CLI, m
        if m != "fakes":
            assert "fakes" not in reachable(m), (m, "fakes")


SIMULATORS = {"simserver", "sim_binance", "sim_binance_futures", "sim_alpaca", "sim_streams"}


def test_only_the_cli_and_the_fakes_import_the_venue_simulators():
    assert SIMULATORS <= set(GRAPH)
    for m in GRAPH:
        if m not in SIMULATORS | CLI | {"fakes"}:
            assert not reachable(m) & SIMULATORS, (m, sorted(reachable(m) & SIMULATORS))
    for m in SIMULATORS:  # a simulator stands in for the venue: it knows nothing of the code it is tested with
        assert not reachable(m) & (RESEARCH | LIVE | CLI | {"fakes"}), (m, sorted(reachable(m)))


def test_risk_knows_no_broker():
    assert not reachable("risk") & {"brokers", "runner", "store"}, sorted(reachable("risk"))


def test_importing_the_runner_loads_no_research_engine():
    import subprocess
    import sys

    code = (
        "import sys, tradelab.runner; print(sorted(m for m in sys.modules if m.startswith(('tradelab.', 'vectorbt'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = {m.split(".")[1] if m.startswith("tradelab.") else "vectorbt" for m in eval(out)}
    assert not loaded & (RESEARCH | {"vectorbt"}), sorted(loaded)


def test_public_surface_leaves_out_kernels_tables_and_cli_commands():
    import importlib

    import sqlalchemy as sa

    for p in PKG.glob("*.py"):
        if p.stem.startswith("_"):
            continue
        mod = importlib.import_module(f"tradelab.{p.stem}")
        public = getattr(mod, "__all__", [])
        assert not [n for n in public if n.endswith("_nb")], p.stem
        assert not [n for n in public if isinstance(getattr(mod, n, None), sa.Table | sa.MetaData)], p.stem
    assert sorted(importlib.import_module("tradelab.cli").__all__) == ["app", "main", "run_in_process"]
    for m in CLI - {"cli"}:  # commands, options and consoles are the CLI's own business
        assert importlib.import_module(f"tradelab.{m}").__all__ == [], m


def test_strategy_parameter_models_carry_their_own_docstring():
    from pydantic import BaseModel

    from tradelab.strategies import STRATEGIES

    for name, st in STRATEGIES.items():
        doc = st.params_model.__doc__
        assert doc and doc != BaseModel.__doc__ and "concepts/models" not in doc, name


def test_wide_public_functions_document_their_parameters():
    "docments (nbdev): each public function, method or dataclass with over four parameters says what each one is."
    import dataclasses
    import importlib
    import inspect

    from fastcore.docments import docments

    missing = []
    for p in sorted(PKG.glob("*.py")):
        if p.stem.startswith("_") or p.stem == "data":
            continue
        mod = importlib.import_module(f"tradelab.{p.stem}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                if dataclasses.is_dataclass(obj):  # its fields are its __init__'s parameters
                    fields = [f.name for f in dataclasses.fields(obj) if f.init]
                    notes = docments(obj) if len(fields) > 4 else {}
                    undocumented = [f for f in fields if len(fields) > 4 and not notes.get(f)]
                    if undocumented:
                        missing.append(f"{p.stem}.{name}: {', '.join(undocumented)}")
                    continue
                members = [(f"{name}.{k}", v) for k, v in vars(obj).items() if inspect.isfunction(v)]
                members = [(n, f) for n, f in members if not n.split(".")[-1].startswith("_") or n.endswith("__init__")]
            elif inspect.isfunction(obj) and obj.__module__.startswith("tradelab"):
                members = [(name, obj)]
            else:
                continue
            for qual, f in members:
                params = [q for q in inspect.signature(f).parameters if q not in ("self", "cls")]
                if len(params) <= 4:
                    continue
                notes = docments(f)
                undocumented = [q for q in params if not notes.get(q)]
                if undocumented:
                    missing.append(f"{p.stem}.{qual}: {', '.join(undocumented)}")
    assert not missing, missing


def _modules_after(code: str) -> set[str]:
    "The top-level packages (and tradelab modules, as tradelab.x) a fresh interpreter has loaded after `code`."
    import subprocess
    import sys

    probe = code + "\nimport sys\nprint(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = eval(out.strip().splitlines()[-1])
    return {m if m.startswith("tradelab.") else m.split(".")[0] for m in loaded}


def test_a_backtest_imports_vectorbt_only_when_its_portfolio_is_asked_for():
    run = (
        "from tradelab.backtest import backtest\nfrom tradelab.ohlcv import synthetic_ohlcv\n"
        "res = backtest(synthetic_ohlcv(300, '1h', seed=1), 'sma_cross', {'fast': 5, 'slow': 20})\n"
    )
    heavy = {"vectorbt", "plotly", "quantstats", "sqlalchemy", "ccxt", "papermill", "matplotlib"}
    assert not _modules_after(run) & heavy, sorted(_modules_after(run) & heavy)
    assert "vectorbt" in _modules_after(run + "res.portfolio.total_return()\n")


def test_config_check_loads_neither_the_state_database_nor_pandas():
    code = (
        "import sys\nfrom tradelab.cli import main\nsys.argv = ['tradelab', 'config', 'check']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )
    loaded = _modules_after(code)
    assert not loaded & {"sqlalchemy", "pandas", "numba", "tradelab.store"}, sorted(loaded)
