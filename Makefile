# Two commands for a new user: `make sim` and `make test`. Both set up .venv/ first (idempotent:
# a second run installs and builds nothing; see tools/setup_env.py).
PYTHON ?= python3
VENV := .venv
PYTEST_ARGS ?=
SIM_ARGS ?=

.PHONY: setup test sim bench clean

setup:
	$(PYTHON) tools/setup_env.py --venv $(VENV)

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

sim: setup
	$(VENV)/bin/ezm-sim $(SIM_ARGS)

bench: setup
	$(VENV)/bin/python bench/sim_throughput.py
	$(VENV)/bin/python bench/search.py
	$(VENV)/bin/python bench/control_loop.py

clean:
	rm -rf build $(VENV)
