# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
REDIS_PORT ?= 6379

.PHONY: serve test install install-dev system-deps redis lint typecheck openapi bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## serve: install and start the service with embedded defaults (in-memory cache, judge off)
serve: install
	$(BIN)/rlvr-verifier serve --host $(HOST) --port $(PORT)

## system-deps: bubblewrap for the code sandbox, promtool (Debian's prometheus) to check
## the alert rules; installed when running as root
SYSTEM_PACKAGES := bwrap:bubblewrap promtool:prometheus
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing) >/dev/null; \
	  else echo "warning: cannot install$$missing (not root); sandbox tests will fail" >&2; fi; fi

## redis: make sure a Redis server answers on 127.0.0.1:$(REDIS_PORT); start one if none does
redis:
	@redis-cli -h 127.0.0.1 -p $(REDIS_PORT) ping >/dev/null 2>&1 || { \
	  command -v redis-server >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; fi; }; \
	  mkdir -p /tmp/rlvr-redis && redis-server --daemonize yes --bind 127.0.0.1 --port $(REDIS_PORT) \
	    --save "" --appendonly no --dir /tmp/rlvr-redis --logfile /tmp/rlvr-redis/redis.log; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h 127.0.0.1 -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.5; done; }

## test: install with dev extras and system packages, ensure Redis, run the whole suite
test: install-dev system-deps redis
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check verifiers service rlvr_client tests bench examples
	$(BIN)/ruff format --check verifiers service rlvr_client tests bench examples

typecheck: install-dev
	$(BIN)/mypy

## openapi: regenerate the committed OpenAPI document
openapi: install
	$(BIN)/python -m service.openapi > openapi/openapi.json

bench: install-dev
	$(BIN)/python bench/math_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
