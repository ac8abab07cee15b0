# One target per thing a developer does. The venv is made once and reused:
# llama-cpp-python compiles from source (minutes on 2 cores), so it is never rebuilt
# unless pyproject.toml changes, and pip's wheel cache makes even that quick.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.joulegate-installed

.PHONY: serve test lint bench install services browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "joulegate needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/joulegate prepare
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/joulegate serve

# Chromium (for the dashboard test) and PostgreSQL come from Debian's packages.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the dashboard test will skip (run as root to install it)"

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  command -v pg_ctlcluster >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; \
	  command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; } || \
	  echo "PostgreSQL not running: PostgreSQL tests will skip (or fail under JOULEGATE_REQUIRE_SERVICES=1)"

test: $(STAMP) browser services
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
