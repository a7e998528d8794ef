"""pytest hooks shared by the notebook tests (nbval) and tests/.

nbval does not know nbdev's cell flags: cells marked `#| eval: false` (network, keys) or carrying
one of settings.ini's `tst_flags` (`#| notest`) are skipped here, just as nbdev_test skips them.

Two lanes (`make test` runs pytest-xdist with two workers and `--dist loadgroup`): the notebooks in one, tests/ in
the other, each in its own order, one item at a time. The tests/ lane waits on processes, servers and simulated
venues far more than it computes, so the notebooks use the core it leaves idle; no two tests of tests/ ever run at
once. Without xdist (`pytest` alone) the groups mean nothing and everything runs in one process, as before.
"""

import re

import pytest


def _lane(item) -> str:
    return "notebooks" if str(item.fspath).endswith(".ipynb") else "tests"


_SKIP = re.compile(r"^\s*#\s*\|\s*(eval:\s*false|notest)\s*$", re.MULTILINE)


def pytest_collection_modifyitems(config, items):
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and _SKIP.search(cell.get("source", "")):
            item.add_marker(pytest.mark.skip(reason="nbdev flag: not run in tests"))
        item.add_marker(pytest.mark.xdist_group(_lane(item)))
