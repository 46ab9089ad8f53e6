# Kasagi Sync — two commands: `make run` (server on :8080) and `make test` (whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 0.0.0.0
PORT   ?= 8080

.PHONY: run test install lint bench compare clean yjs colyseus

$(VENV)/.installed: requirements.txt requirements-dev.txt clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt -e ./clients/python
	touch $@

install: $(VENV)/.installed

## The pinned yjs (clients/js-yjs): the interop test's Node peers and the vendored bundle
YJS := clients/js-yjs
$(YJS)/node_modules/.installed: $(YJS)/package.json $(YJS)/package-lock.json
	cd $(YJS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

yjs: $(YJS)/node_modules/.installed

## The pinned Colyseus 0.16 (bench/colyseus): bench.compare's peer for issue 17
COLYSEUS := bench/colyseus
$(COLYSEUS)/node_modules/.installed: $(COLYSEUS)/package.json $(COLYSEUS)/package-lock.json
	cd $(COLYSEUS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

colyseus: $(COLYSEUS)/node_modules/.installed

## Set up and run one server: SQLite, in-memory rooms, demo at http://localhost:8080/
run: install
	$(PY) manage.py migrate --noinput
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) --ping-interval 10 --ping-timeout 30 \
		kasagi_project.asgi:application

## Set up and run the whole test suite (Python, JS client unit tests, lint)
test: install yjs colyseus
	$(VENV)/bin/ruff check .
	node --test static/kasagi/tests/
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

## Load tool against a running server (see bench/README.md)
bench: install
	$(PY) -m bench.load --url ws://127.0.0.1:$(PORT)/sync $(BENCH_ARGS)

## Kasagi vs the hand-written Channels consumer, same workload, one run
compare: install
	$(PY) -m bench.compare $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache test-artifacts
