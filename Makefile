# CreatorFlow: `make run` serves the dashboard for development, `make serve` in production,
# `make test` runs the whole suite, `make bench` the benchmarks (QUICK=1: a short run of each).
# All create .venv and install everything on first use (Python 3.11+).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# Seconds a stopping `make serve` waits for requests in flight (a webhook is answered within 2 s,
# and one cut short is in the inbox already, applied by the next batch of any server).
SHUTDOWN_GRACE ?= 5

.PHONY: run serve test bench migrate clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py demo_seed --if-empty --server-url http://$(HOST):$(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: one uvicorn worker process per core on one port; settings from the environment
# (DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS, DEBUG=0). See README "Running in production".
serve: migrate
	$(BIN)/python -m uvicorn creatorflow.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --lifespan off --no-access-log --loop uvloop --http httptools --ws websockets-sansio \
		--timeout-graceful-shutdown $(SHUTDOWN_GRACE)

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,) $(BENCH_ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles artifacts
