# tradelab: two commands on a fresh clone
#   make demo   backtest sma_cross on BTC/USDT 1h and print stats
#   make test   library in sync with the notebooks, lint, then pytest in two lanes (notebooks and tests/)
# Both create .venv and install everything on first use (or when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tradelab-installed

# numba's on-disk cache (vectorbt's kernels and ours) lives in the venv, warmed once at set-up
export NUMBA_CACHE_DIR ?= $(CURDIR)/$(VENV)/numba-cache
# the shared Binance candles, when this checkout sits beside them
SHARED_DATA ?= $(abspath $(CURDIR)/../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/ohlcv/binance-spot-btc-1h),)
export TRADELAB_SAMPLE_DIR ?= $(SHARED_DATA)/ohlcv/binance-spot-btc-1h
export TRADELAB_TEST_DATA ?= $(SHARED_DATA)
endif

# files of tests/ that run in the notebooks' lane (CPU-bound or quick), so the two lanes take about as long
NOTEBOOK_LANE_TESTS := tests/test_reports.py tests/test_docs.py tests/test_data_cli.py tests/test_cli.py \
	tests/test_crosscheck_backtesting_py.py tests/test_structure.py

.PHONY: demo test lab docs docs-quarto lint clean sync venv

venv: $(STAMP)

$(STAMP): pyproject.toml settings.ini
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ml]"
	$(BIN)/python -m pip check
	$(BIN)/python -c "from tradelab.sweep import warm_up; warm_up()"
	@touch $@

demo: $(STAMP)
	$(BIN)/tradelab demo

test: $(STAMP)
	$(BIN)/python tests/sync_check.py
	$(BIN)/ruff check tradelab nbs tests docs $(wildcard benchmarks)
	$(BIN)/ruff format --check --quiet nbs tests docs $(wildcard benchmarks) tradelab/templates
	@# two lanes of about equal length: the notebooks with the quick and CPU-bound files of tests/, beside the files of
	@# tests/ that mostly wait on processes and local servers; each lane runs one item at a time
	@$(BIN)/pytest -q --nbval-lax --durations=8 nbs $(NOTEBOOK_LANE_TESTS) > .notebooks-lane.log 2>&1 & lane=$$!; \
	$(BIN)/pytest -q --durations=12 tests $(foreach t,$(NOTEBOOK_LANE_TESTS),--deselect $(t)); tests_rc=$$?; \
	wait $$lane; notebooks_rc=$$?; \
	echo "--- notebooks and quick tests ---"; cat .notebooks-lane.log; rm -f .notebooks-lane.log; \
	echo "tests/ lane exit $$tests_rc, notebooks lane exit $$notebooks_rc"; \
	exit $$(( tests_rc || notebooks_rc ))

sync: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python tests/sync_check.py --readme-only

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=nbs

# the site with every notebook's outputs, built offline (docs/build.py; executed copies cached in _proc/executed,
# which `make test` fills as it runs the notebooks); docs-quarto is nbdev's own nbdev_docs, for those with Quarto
docs: $(STAMP)
	$(BIN)/python docs/build.py

docs-quarto: $(STAMP)
	$(BIN)/nbdev_docs

lint: $(STAMP)
	$(BIN)/ruff format nbs tests docs $(wildcard benchmarks) tradelab/templates
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/ruff check tradelab nbs tests docs $(wildcard benchmarks)

clean:
	rm -rf $(VENV) _docs _proc .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
