# plus-gateway: `make run` and `make test` work from a fresh clone with Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-full demo demo-eservices demo-volunteering keys clean format

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
	$(BIN)/plus-gateway demo eservices

demo-eservices: $(STAMP)
	$(BIN)/plus-gateway demo eservices

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

# PostgreSQL for the growth benchmark's second backend (a database plusgw_growth is made and
# dropped through this URL); empty: SQLite only.
BENCH_POSTGRES ?= $(PLUSGW_TEST_POSTGRES_URL)

bench: keys
	$(BIN)/python -m bench.run --registries --growth --growth-scale 0.1 --drain --accept --memory $(if $(BENCH_POSTGRES),--growth-postgres $(BENCH_POSTGRES) --accept-postgres $(BENCH_POSTGRES))

# The long ones at full size: ten years of growth (1.2 M messages) on SQLite and PostgreSQL;
# the drain of 18,488 messages, accept for 20 s per phase, 100,000 messages per flow for RSS.
bench-full: keys
	$(BIN)/python -m bench.run --registries --growth --growth-scale 1.0 --drain --accept --memory --full $(if $(BENCH_POSTGRES),--growth-postgres $(BENCH_POSTGRES) --accept-postgres $(BENCH_POSTGRES))

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
