# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= data/demo
PERSONS ?= 10000
SEED   ?= 42

.PHONY: demo test check lint typecheck install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

## demo: install, generate $(PERSONS) persons, run the hub, print the summary and the F1
demo: install
	rm -rf $(DEMO)
	$(BIN)/sharehub generate --persons $(PERSONS) --seed $(SEED) --out $(DEMO)
	SHAREHUB_WAREHOUSE=$(DEMO)/warehouse.duckdb SHAREHUB_MODEL_PATH=$(DEMO)/model.json \
	  $(BIN)/sharehub run --landing $(DEMO)/landing --health-url sqlite:///$(abspath $(DEMO))/health.db
	$(BIN)/sharehub evaluate --truth $(DEMO)/truth.csv --warehouse $(DEMO)/warehouse.duckdb
	@echo "Results: $(DEMO)/warehouse.duckdb (shared.person, shared.person_xref, audit.sharing_metrics);"
	@echo "export one with: $(BIN)/sharehub export shared.person --out person.csv --warehouse $(DEMO)/warehouse.duckdb"

## test: install, lint, type-check and run the test suite
test: install lint typecheck
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
