# The two commands: `make run` (set up everything, then serve the portal with demo data)
# and `make test` (the whole suite). Everything else here is a step they call.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The embedded set-up: SQLite in the repo, Celery tasks in-process, no secret key needed.
LOCAL := DJANGO_DEBUG=1

.PHONY: run setup install messages migrate demo test lint format clean bench

run: setup
	@echo "Serving the portal at http://127.0.0.1:8000 (Ctrl+C to stop)"
	$(LOCAL) $(BIN)/python manage.py runserver 127.0.0.1:8000

setup: install messages migrate demo

install: $(BIN)/.installed

$(BIN)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

# Compiled in Python (Babel), so a machine without GNU gettext can build the .mo files.
messages: install
	$(BIN)/pybabel compile --domain django --directory locale --use-fuzzy --statistics 2>&1 | tail -n 1

migrate: install
	$(LOCAL) $(BIN)/python manage.py migrate --noinput

demo: install
	$(LOCAL) $(BIN)/python manage.py seed_demo

test: install messages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every bench, one after the other, into bench/results.md (BENCH_ARGS=--quick for a short check).
bench: install
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var db.sqlite3 test-artifacts
