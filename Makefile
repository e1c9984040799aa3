# Ticket Hub. `make run` serves the app with its task worker; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
AXE_VERSION := 4.14.1
export FLASK_APP := app:create_app

.PHONY: run seed test bench migrate system-test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-test: requirements-test.txt $(VENV)/.requirements
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

migrate: $(VENV)/.requirements
	$(BIN)/flask db upgrade

run: migrate
	HOST=$(HOST) PORT=$(PORT) bash scripts/run.sh

# Demo organizers, buyers and events (password: demo-password) in the very database `make run`
# serves, on the same settings: run it in a second terminal while `make run` runs (SQLite
# lets it write beside the app; its emails go through the running task worker), or before.
# Safe to run again: it adds only what is missing.
seed: migrate
	HOST=$(HOST) PORT=$(PORT) $(BIN)/flask seed-demo

# Debian packages the tests drive: chromium (browser tests), PostgreSQL (the engine and
# concurrency tests on a second database), Redis (shared rate-limit storage), nginx (the
# shipped reverse-proxy configuration, tests/proxy).
system-test-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

.cache/axe-core/axe.min.js:
	mkdir -p .cache && cd .cache && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
	  && rm -rf axe-core && mkdir axe-core && tar xzf axe-core-$(AXE_VERSION).tgz -C axe-core --strip-components=1 \
	  && rm axe-core-$(AXE_VERSION).tgz

test: $(VENV)/.requirements-test system-test-deps .cache/axe-core/axe.min.js
	$(BIN)/ruff check .
	REQUIRE_POSTGRES=1 $(BIN)/python -m pytest

# The HTTP benchmarks (bench/http_rush.py) drive gunicorn with Debian's wrk.
bench: $(VENV)/.requirements-test system-test-deps
	@command -v wrk >/dev/null || { echo "installing: wrk"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache test-artifacts
