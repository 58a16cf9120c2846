# Two commands from a fresh clone: `make run` and `make test`. Only python3 and make are assumed.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install lint bench clean migration

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(FLASK) serve --port $(PORT)

# The suite runs on SQLite always, and again on PostgreSQL when TEST_DATABASE_URL is set.
test: install
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
