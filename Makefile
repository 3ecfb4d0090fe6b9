# plus-gateway: `make run` and `make test` work from a fresh clone with Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench demo demo-volunteering keys clean format

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

keys: $(STAMP)
	$(BIN)/plus-gateway keys init

run: keys
	@echo "Volunteer facade token (development issuer): $(BIN)/plus-gateway facade token --role volunteer --subject me"
	$(BIN)/plus-gateway serve --with-simulators

demo: $(STAMP)
	$(BIN)/plus-gateway demo --institution ievp

demo-volunteering: $(STAMP)
	$(BIN)/plus-gateway demo volunteering

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format gateway tests bench
	$(BIN)/ruff check --fix gateway tests bench

test: lint
	$(BIN)/pytest -q

bench: keys
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
