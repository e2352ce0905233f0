# The two commands a newcomer needs: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Tests run against a real PostgreSQL and Redis, as production does (.ci/run starts them when they are down).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/shelfwise
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo test quick fuzz lint typecheck install bench-import run worker clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the dependencies change, so a second `make demo` starts in seconds.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[ml,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	@\
	$(BIN)/python manage.py migrate --noinput -v 0 && \
	$(BIN)/python manage.py load_demo && \
	$(BIN)/python manage.py zeroshot --background --if-missing && \
	echo && echo "  Shelfwise is starting on http://127.0.0.1:8000  (Ctrl-C stops web and worker)" && \
	echo "  Log in as annotator / manager / admin, password: demo" && echo && \
	exec $(BIN)/honcho start -f Procfile

# Chromium for the browser tests comes from Debian; Playwright's own browser download cannot work here.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

test: install chromium
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy config core accounts catalog mlcore labeling bench docs

# The edit-test loop: everything but the browser and the real worker processes.
quick: install
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(BIN)/python -m pytest -m "not e2e and not slow" -q $(PYTEST_ARGS)

# The API fuzz at length: 100 generated requests per operation and role instead of the suite's few.
fuzz: install
	SHELFWISE_FUZZ_EXAMPLES=100 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(BIN)/python -m pytest -q tests/security/test_api_fuzz.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy config core accounts catalog mlcore labeling bench docs

bench-import: install
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m bench.import_products

run: install
	$(BIN)/python manage.py runserver 127.0.0.1:8000

worker: install
	$(BIN)/celery -A config worker -Q fast,default,training,scoring --concurrency=1 --loglevel=INFO

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache .mypy_cache
