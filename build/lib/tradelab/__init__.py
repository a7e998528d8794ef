"tradelab: Jupyter-first research, backtesting and paper trading of trading strategies."
__version__ = "0.1.0"

import os as _os
import sys as _sys

# numba caches compiled kernels (vectorbt's and ours) on disk; keep them in one writable place per
# environment so the 30 s first compile happens once (at `make` set-up), not in every process.
_os.environ.setdefault("NUMBA_CACHE_DIR", _os.path.join(_sys.prefix, "numba-cache")
                       if _os.access(_sys.prefix, _os.W_OK)
                       else _os.path.join(_os.path.expanduser("~"), ".cache", "tradelab", "numba"))
