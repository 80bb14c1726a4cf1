# Two targets a newcomer needs: `make demo` and `make test-all`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Packaging (installers/README.md): the offline kit for a site, the agent's .deb, the console as an application.
PLATFORMS ?= all
KIT_AUTHORITY ?=
KIT_FLAGS := --platforms $(PLATFORMS) --deb $(if $(KIT_AUTHORITY),--authority $(KIT_AUTHORITY)) $(if $(KIT_PASSPHRASE),--passphrase)

.PHONY: demo test test-slow test-all lint bench clean offline-kit deb console-app constraints

# Every install takes the exact versions in constraints.txt (what the suite last passed with): a new release
# upstream cannot break a fresh clone's tests. pip itself too (sqlite-utils depends on it).
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed: make PYTHON=python3.12 ..."'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c constraints.txt pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# After upgrading .venv on purpose (README: "Pinned test dependencies"): pin what it holds, then run `make test-all`.
constraints:
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --all --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: $(STAMP)
	$(BIN)/edge-console --demo

# Two lanes on pytest-xdist workers (tests/conftest.py keeps a file on one worker and every test that uses mDNS on
# 127.0.0.1 on the same one): `make test` is everything but the slow lane and takes under 8 minutes here;
# `make test-slow` builds and installs the programs and runs the field trial's site; `make test-all` (the README's
# and CI's command) runs both. The main lane runs three workers even on two cores: most of its tests wait on agent
# processes and sockets (on a 2-core machine: 475 s with two workers, 340 s with three, 328 s with four). The slow
# lane's tests build wheels and install them, work that does use the cores: two workers.
PYTEST := QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest
MAIN_WORKERS ?= 3
SLOW_WORKERS ?= 2

test: $(STAMP) lint
	$(PYTEST) -n $(MAIN_WORKERS) -m "not slow_lane"

test-slow: $(STAMP)
	$(PYTEST) -n $(SLOW_WORKERS) -m slow_lane

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detector.py
	$(BIN)/python benchmarks/bench_agent.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/bench_console.py
	$(BIN)/python benchmarks/bench_compare.py
	$(BIN)/python benchmarks/bench_update.py

offline-kit: $(STAMP)
	$(BIN)/python installers/kit/build_kit.py $(KIT_FLAGS)

deb: $(STAMP)
	$(BIN)/python installers/deb/build_deb.py

console-app: $(STAMP)
	$(BIN)/python installers/console-app/build_app.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The field trial (tests/field_trial/, figures in benchmarks/FIELD_TRIAL.md): a simulated site in network namespaces
# (root), scripted faults, a rollout under faults, the broken-release corpus and >100,000 fuzzed inputs; minutes.
# Prints one JSON line last. SEED=N repeats a run. Needs nftables and faketime (apt-get install nftables faketime).
.PHONY: field-trial
field-trial: $(STAMP)
	$(BIN)/python -m tests.field_trial.trial --long $(if $(SEED),--seed $(SEED))
