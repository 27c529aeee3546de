# Two commands for a fresh machine with nothing but Python: `make run` and `make test`.
# Without DATABASE_URL both start a private embedded PostgreSQL under $(DATA_DIR).

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/var
export PORT DATA_DIR
export PATH := $(BIN):$(PATH)

.PHONY: install run test lint audit format migrate bench bench-prebooking faults browser clean \
	createsuperuser manage screenshots bench-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python scripts/withdb.py --name dev -- sh scripts/serve.sh

test: install browser
	$(BIN)/python scripts/withdb.py --name test -- $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/audit.py

# Known vulnerabilities in the pinned runtime requirements (part of lint). Fails on a finding;
# warns (exit 0) when the vulnerability service is unreachable, unless AUDIT_STRICT=1.
audit: install
	$(BIN)/python scripts/audit.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(BIN)/python scripts/withdb.py --name dev -- $(BIN)/python manage.py migrate

# Every bench/*.py with a main(), against a private embedded PostgreSQL; bench/results/SUMMARY.md.
bench: install bench-tools
	$(BIN)/python scripts/withdb.py --name bench -- $(BIN)/python bench/run_all.py $(BENCH_ARGS)

bench-prebooking: install
	$(BIN)/python scripts/withdb.py --name bench -- $(BIN)/python -m bench.prebooking

browser:
	@sh scripts/ensure_chromium.sh

# wrk (Debian's) saturates the webhook with little CPU of its own; without it the benchmark
# falls back to its Python client and says so in its results.
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| echo "WARNING: wrk not installed: the webhook saturation figure uses the Python client"

clean:
	rm -rf $(VENV) .pytest_cache

# Asks in a terminal; with DJANGO_SUPERUSER_USERNAME (and _EMAIL, _PASSWORD) set it asks nothing,
# so it also works without a TTY.
createsuperuser: install
	$(BIN)/python scripts/withdb.py --name dev -- $(BIN)/python manage.py createsuperuser \
		$(if $(DJANGO_SUPERUSER_USERNAME),--noinput)

# Any manage.py command against the development database (the running `make run`'s, or started
# for the command): make manage ARGS="prebooking_demo --count 100 --in 60"
manage: install
	$(BIN)/python scripts/withdb.py --name dev -- $(BIN)/python manage.py $(ARGS)

faults: install
	$(BIN)/python scripts/withdb.py --name faults -- $(BIN)/python -m bench.faults $(FAULTS)

# PNGs of the console for the docs (scripts/screenshots.py): its own "screenshots" database.
screenshots: install browser
	$(BIN)/python scripts/withdb.py --name dev --database screenshots -- \
		$(BIN)/python scripts/screenshots.py
