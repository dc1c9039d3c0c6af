# pgfailover: the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
WHEELS := /var/cache/pgfailover/wheels
PYTEST := PYTHONPATH=test $(VENV)/bin/pytest

.PHONY: deps venv lint test test-quick test-formations unit functional integration demo bench chaos kitchen reference lab-down clean

deps:
	bin/install-deps

# Built with /usr/bin/python3: the postgres user must be able to run it (runas).
$(VENV)/.installed: requirements.txt
	rm -rf $(VENV)
	/usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	mkdir -p $(WHEELS)
	$(VENV)/bin/pip wheel -q -w $(WHEELS) --find-links $(WHEELS) -r requirements.txt
	$(VENV)/bin/pip install -q --no-index --find-links $(WHEELS) -r requirements.txt
	touch $@

venv: deps $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check _modules _states _beacons pgfailover/files test bin/*.py
	$(VENV)/bin/ruff format --check _modules _states _beacons pgfailover/files test bin/*.py
	$(VENV)/bin/yamllint -s .
	find pgfailover -name '*.sls' -print0 | xargs -0 --no-run-if-empty $(VENV)/bin/salt-lint

unit: venv
	$(PYTEST) test/unit

functional: venv
	$(PYTEST) test/functional

integration: venv
	$(PYTEST) test/integration

# Everything CI runs: lint, then every test (unit, functional, lab), one after
# the other: run beside the lab tests, functional tests failed
# (docs/lab-and-tests.md).
test: lint
	$(PYTEST) -ra --durations=40

# Skips the long failure scenarios (marked slow).
test-quick: lint
	$(PYTEST) -ra -m "not slow"

# Several formations on one monitor (test/integration/formations): not in
# make test, which must stay inside CI's budget (about 5 minutes more).
test-formations: lint
	$(PYTEST) -ra test/integration/formations

demo: venv
	$(VENV)/bin/python bin/demo.py

bench: venv
	bin/bench

# The chaos campaign (docs/reliability/): SEED and FAULTS as wanted; long (about a
# minute per fault). CI runs a short seeded one among the lab tests.
SEED ?= 1
FAULTS ?= 60
chaos: venv
	bin/chaos --seed $(SEED) --faults $(FAULTS)

# kitchen.yml's suites for real on lab hosts (converge, converge again with no
# change, the suite's verifier), as Test Kitchen would in containers.
kitchen: venv
	bin/kitchen

# docs/reference.md from the modules' docstrings (a unit test fails when it is stale).
reference: venv
	$(VENV)/bin/python bin/reference.py

lab-down: venv
	bin/lab down

clean: lab-down
	rm -rf $(VENV)
