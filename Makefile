# The README's two commands: `make run` starts the portal, `make test` runs every test.
SHELL := /bin/bash
# The interpreter that creates .venv: python3.13, else python3.12, else python3 if it is 3.12 or
# newer (looked up on PATH; `make PYTHON=/path/to/python3.12` picks another).
PYTHON ?= $(or $(shell for p in python3.13 python3.12 python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; \
	done),$(error No Python 3.12 or newer on PATH (tried python3.13 then python3.12 then python3): \
	install one or run make PYTHON=/path/to/python3.12))
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-clock lint format worker clean check-deploy bandit

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input -v 0
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "  OBD Portal: http://$(HOST):$(PORT)/   (log in with the demo login above)"
	@echo "  Workers and the engine started beside the web server; Ctrl-C stops them all."
	@echo
	@trap 'kill 0' EXIT; \
	$(BIN)/python manage.py worker --interval 0.5 --queue-name default & \
	$(BIN)/python manage.py worker --interval 0.5 --queue-name campaigns & \
	$(BIN)/python manage.py engine & \
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

worker: $(BIN)/.installed
	$(BIN)/python manage.py worker --queue-name '*'

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests that deal with dates, zones, hours, schedules, retries and roll-ups, run as if it were
# each of the instants in tests/clock (year and month ends, zones on other dates than UTC,
# daylight-saving changes both ways). `make test` runs everything at one pinned instant.
test-clock: $(BIN)/.installed
	@for now in $$($(BIN)/python -c 'from tests.clock import INSTANTS; print(*INSTANTS)'); do \
	  echo "== clock tests at $$now"; \
	  $(BIN)/pytest -m clock -q -p no:cacheprovider --now $$now $(PYTEST_ARGS) || exit 1; \
	done

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache

# Security lint: no medium or high finding in the application code.
bandit: $(BIN)/.installed
	$(BIN)/bandit -q -r calls obdportal --severity-level medium

# Production settings must pass Django's deployment checks with no warning.
check-deploy: $(BIN)/.installed
	DJANGO_SETTINGS_MODULE=obdportal.production SECRET_KEY=ci-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=') \
	  OBD_WEBHOOK_SECRET=ci-secret ALLOWED_HOSTS=obd.example.com \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING
