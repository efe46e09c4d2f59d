# The two commands the README promises, on a fresh clone with Python 3.11+:
#   make run    start the server with defaults (127.0.0.1:9099)
#   make test   run the test suite (unit, property, integration, harness) but
#               the tests marked slow; CI (.ci/run) runs those too:
#               make test PYTEST_ARGS=""

# Both create .venv and install what they need into it first.

PYTHON ?= python3
VENV ?= .venv
# make test skips the tests marked slow (each over 10 s; CI runs them).
PYTEST_ARGS ?= -m "not slow"
BIN := $(VENV)/bin

.PHONY: run test harness bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/trio-kv $(ARGS)

# The pure tests (the deterministic simulation, unit and property tests: no sockets, no server
# processes, no real time) run on PURE_WORKERS processes (pytest-xdist); the rest (integration:
# real servers, fixed loopback addresses, faults timed in real time) runs alone after them. Both
# parts always run; the target fails if either failed (pytest's 5, "no tests collected", is no failure:
# a -k in PYTEST_ARGS may select tests of one part only).
PURE_TESTS := tests/cluster_sim tests/unit tests/property
PURE_WORKERS ?= 2

test: $(VENV)/.test-installed
	./scripts/ensure-tools
	@pure=0; rest=0; \
	$(BIN)/python -m pytest -n $(PURE_WORKERS) $(PYTEST_ARGS) $(PURE_TESTS) || pure=$$?; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests $(addprefix --ignore=,$(PURE_TESTS)) || rest=$$?; \
	for status in $$pure $$rest; do [ $$status = 0 ] || [ $$status = 5 ] || exit 1; done

harness: $(VENV)/.run-installed
	./scripts/ensure-tools
	PATH="$(abspath $(BIN)):$$PATH" ./harness/run

bench: $(VENV)/.test-installed
	$(BIN)/python bench/redis_compare.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
