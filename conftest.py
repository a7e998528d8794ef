"""pytest hooks shared by the notebook tests (nbval) and tests/.

nbval does not know nbdev's cell flags: cells marked `#| eval: false` (network, keys) or carrying
one of settings.ini's `tst_flags` (`#| notest`) are skipped here, just as nbdev_test skips them.
"""

import re

import pytest

_SKIP = re.compile(r"^\s*#\s*\|\s*(eval:\s*false|notest)\s*$", re.MULTILINE)


def pytest_collection_modifyitems(config, items):
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and _SKIP.search(cell.get("source", "")):
            item.add_marker(pytest.mark.skip(reason="nbdev flag: not run in tests"))


# The docs site shows every notebook with its outputs (docs/execute.py). The outputs nbval gets as it runs a
# notebook are kept as the docs' executed copy, once every cell of the notebook ran and none failed.
_RUNS: dict = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not hasattr(item, "test_outputs"):
        return
    report = outcome.get_result()
    run = _RUNS.setdefault(item.parent, {"failed": False, "seen": set(), "outputs": {}})
    run["failed"] |= report.failed
    run["seen"].add(item.cell_num)
    if call.when == "call" and item.test_outputs is not None:
        run["outputs"][item.cell_num] = list(item.test_outputs)


def pytest_runtest_teardown(item, nextitem):
    if not hasattr(item, "test_outputs") or (nextitem is not None and nextitem.parent is item.parent):
        return
    run = _RUNS.pop(item.parent, None)
    code_cells = [c for c in item.parent.nb.cells if c.cell_type == "code"]
    if run is None or run["failed"] or len(run["seen"]) != len(code_cells):
        return
    import copy
    from pathlib import Path

    execute = _docs_execute()
    nb = copy.deepcopy(item.parent.nb)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.outputs = run["outputs"].get(i, [])
    try:
        execute.save(Path(str(item.parent.fspath)), nb, execute.LIBRARY)
    except ValueError:  # a notebook outside nbs/ (a test's temporary one): not part of the site
        pass


def _docs_execute():
    "docs/execute.py, loaded once, with the library's hash computed once (the library does not change in a run)."
    global _EXECUTE
    if _EXECUTE is None:
        import importlib.util
        from pathlib import Path

        spec = importlib.util.spec_from_file_location("docs_execute", Path(__file__).parent / "docs" / "execute.py")
        _EXECUTE = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_EXECUTE)
        _EXECUTE.LIBRARY = _EXECUTE.library_hash()
    return _EXECUTE


_EXECUTE = None
