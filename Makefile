# Two commands from a fresh clone: `make run` and `make test`. Only python3 and make are assumed.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install lint bench clean migration odk-engine

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(FLASK) serve --port $(PORT)

# ODK Web Forms for tests/test_openrosa_engine.py, pinned by its package-lock.json, when npm is here
# (CI has it); without npm that one test skips, and fails under HOMECOMING_STRICT=1.
ENGINE := tests/odk_engine
odk-engine:
	@if [ $(ENGINE)/node_modules/.package-lock.json -nt $(ENGINE)/package-lock.json ]; then :; \
	elif command -v npm >/dev/null; then cd $(ENGINE) && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests/test_openrosa_engine.py will skip"; fi

# The suite runs on SQLite always, and again on PostgreSQL when TEST_DATABASE_URL is set.
test: install odk-engine
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL: $$TEST_DATABASE_URL"; \
		$(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/sync_bench.py
	$(BIN)/python bench/alerts_bench.py
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/field_bench.py

clean:
	rm -rf $(VENV) .pytest_cache

migration: install
	$(BIN)/python migrations/regenerate.py
