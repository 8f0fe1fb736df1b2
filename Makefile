# Kestrel CRM — two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO ?= 1
DEMO_CUSTOMERS ?= 2000
PORT ?= 8501
HOST ?= 127.0.0.1
CLUSTER_PORT ?= 8080

.PHONY: run cluster test install install-dev browser services-env lint bench clean

# a stamp per requirements file content, so a changed pin reinstalls
RUNTIME_STAMP := $(VENV)/.runtime-$(shell sha1sum requirements.txt | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.runtime-*; touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.dev-*; touch $@

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

## make run: install, create/upgrade the SQLite database, load demo data if empty, then serve the app
## (uvicorn server:app on HOST:PORT, default 127.0.0.1:8501) with a job worker and the mail listener (MAIL_PORT,
## default 8025, 0: none) beside it; Ctrl-C stops them all
## (the demo load runs in this process, CRM_JOBS_INLINE=1: no worker is running yet)
## DEMO=0 skips the demo data and serves without demo mode (the demo users, whose password the README
## publishes, can sign in only when CRM_DEMO_MODE=1, which DEMO=1 sets; the pages then say so in a banner)
run: install
	$(BIN)/python -m crm_core init
	@if [ "$(DEMO)" = 1 ]; then \
	  CRM_JOBS_INLINE=1 $(BIN)/python -m crm_core demo --customers $(DEMO_CUSTOMERS) --if-empty --today $$(date +%F); \
	fi
	CRM_DEMO_MODE=$(DEMO) BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) scripts/run.sh

## make cluster: the production topology on this machine (no Docker): PostgreSQL (127.0.0.1:5432, a database
## of its own, CLUSTER_DATABASE=kestrel: created, migrated, demo data if empty), Redis (CRM_REDIS_URL, default
## 127.0.0.1:6379), two app replicas (APP_PORTS="8601 8602") behind nginx on HOST:CLUSTER_PORT (default 8080;
## Debian's nginx, sticky by a cookie) and two job workers; Ctrl-C stops them all (scripts/cluster.sh)
cluster: install
	CRM_DEMO_MODE=$(DEMO) DEMO=$(DEMO) DEMO_CUSTOMERS=$(DEMO_CUSTOMERS) BIN=$(BIN) HOST=$(HOST) \
	  PORT=$(CLUSTER_PORT) scripts/cluster.sh

## Debian's Chromium, CJK and emoji fonts for the browser tests (Playwright cannot download a browser here)
BROWSER_PACKAGES := chromium fonts-noto-cjk fonts-noto-color-emoji
browser:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "noto sans cjk" \
	    || ! fc-list 2>/dev/null | grep -qi "noto color emoji"; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null)) \
	    || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "note: /usr/bin/chromium missing and no root apt-get; browser tests will skip"; fi; \
	fi

## make test: install test dependencies and the browser, lint the repository (ruff, mypy), then run every test
## (PostgreSQL and MariaDB tests run when their servers answer on localhost) in TEST_WORKERS processes,
## one test file per process at a time so that a file's module fixtures (a served app, a world) are built once
TEST_WORKERS ?= 2
test: install-dev browser lint
	@source scripts/test-databases.sh && $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## make lint: ruff and mypy on the whole repository (pinned in requirements-dev.txt; make test runs it first;
## pyproject.toml's [tool.mypy] files = ["."] makes a bare mypy check pages, tests and benchmarks too)
lint: install-dev
	$(BIN)/ruff check . && $(BIN)/mypy

## make bench BENCH=grid: speed figures against raw SQL (README "Benchmarks": the 1M-customer database)
bench: install
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache artifacts
