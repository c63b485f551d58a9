# NaloxNet: `make demo` runs the whole system on this machine, `make test`
# runs the suite. Both create .venv and install what they need first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test fuzz bench lint mosquitto chromium clean help

help:
	@echo "make demo   - run broker, backend, a simulated fleet and the console"
	@echo "make test   - run the whole test suite"
	@echo "make fuzz   - run the property tests with a random seed and many more examples"
	@echo "make bench  - run the benchmarks (figures in bench-results/)"
	@echo "make lint   - ruff and mypy"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "NaloxNet needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

mosquitto:
	@bash broker_config/ensure-mosquitto.sh

# Debian's chromium for the browser test (tests/browser); it skips, saying why, where apt cannot.
chromium:
	@bash tests/browser/ensure-chromium.sh

demo: $(STAMP) mosquitto
	$(BIN)/nx-sim demo

# Test files run side by side in TEST_WORKERS processes (pytest-xdist; a file's tests
# stay together, so its module fixtures are made once). Most tests wait on brokers,
# databases and child processes, but the browser, fault and demo tests use both cores:
# 4 workers saturated this 2-core machine (25 min, timing failures), 2 keep headroom.
# --tb=native: CPython 3.11's AST state can break pytest's own traceback rendering of a
# failure into an INTERNALERROR that ends the run (python/cpython#106905).
TEST_WORKERS ?= 2
test: $(STAMP) mosquitto chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --tb=native

# Random seed each run (NX_FUZZ_EXAMPLES examples per test, default 2000); a failure
# prints the seed and a @reproduce_failure blob: keep it as an @example (README).
fuzz: $(STAMP) mosquitto
	$(BIN)/python -m pytest -m hypothesis --hypothesis-profile=fuzz

bench: $(STAMP) mosquitto
	@mkdir -p bench-results
	$(BIN)/python -m pytest tests/benchmarks -o addopts="-ra" -s --timeout=3600

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) bench-results .pytest_cache .mypy_cache .ruff_cache
