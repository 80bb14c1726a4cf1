# Two targets a newcomer needs: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Packaging (installers/README.md): the offline kit for a site, the agent's .deb, the console as an application.
PLATFORMS ?= all
KIT_AUTHORITY ?=
KIT_FLAGS := --platforms $(PLATFORMS) --deb $(if $(KIT_AUTHORITY),--authority $(KIT_AUTHORITY)) $(if $(KIT_PASSPHRASE),--passphrase)

.PHONY: demo test lint bench clean offline-kit deb console-app

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed: make PYTHON=python3.12 ..."'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-console --demo

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

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
