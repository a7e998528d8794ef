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
