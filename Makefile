# One target per thing a developer does. The venv is made once and reused:
# llama-cpp-python compiles from source (minutes on 2 cores), so it is never rebuilt
# unless pyproject.toml changes, and pip's wheel cache makes even that quick.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.joulegate-installed
# A portable x86-64-v3 build (AVX2/FMA/F16C), not -march=native: on the Xeon VMs these
# machines can be, a native build compiles ggml's AMX kernels, which crash with a general
# protection fault on the first decode (seen here; cf. ggml-org/llama.cpp#20824), and turning
# GGML_AMX_* off has no effect while GGML_NATIVE is on.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: serve test lint bench install services browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "joulegate needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/python -m pip install -e '.[dev]'
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
	@# Redis holds the rate limits that gateway replicas share (tests/server/test_rate_limits.py).
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }; \
	  command -v redis-server >/dev/null && redis-server --daemonize yes --bind 127.0.0.1 \
	    --port 6379 --save "" --appendonly no >/dev/null; } || \
	  echo "Redis not running: shared rate-limit tests will skip (or fail under JOULEGATE_REQUIRE_SERVICES=1)"

test: $(STAMP) browser services
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
