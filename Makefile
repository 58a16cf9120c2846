# Two commands from a fresh clone: `make run` and `make test`. Only python3 and make are assumed.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install lint bench clean migration odk-engine translations catalogues language

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The web's languages (docs/web.md, "Languages"): each server/translations/<code>/LC_MESSAGES/messages.po
# is compiled to its .mo (not committed) whenever the .po is newer, before run and test.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard server/translations/*/LC_MESSAGES/messages.po))

%.mo: %.po | $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

catalogues: $(CATALOGUES)

install: $(VENV)/.installed $(CATALOGUES)

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

# After changing strings: extract them all, merge them into every catalogue (new ones appear empty,
# changed ones marked fuzzy), translate in the .po files, then `make catalogues` (or run/test) compiles.
translations: install
	$(BIN)/pybabel extract --mapping babel.cfg --no-location --sort-output --keywords _l \
		--output server/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete \
		--input server/translations/messages.pot --output-dir server/translations
	$(MAKE) catalogues

# A new language, e.g. `make language CODE=sw` (Swahili): an empty catalogue to translate.
language: translations
	$(BIN)/pybabel init --input server/translations/messages.pot --output-dir server/translations --locale $(CODE)

migration: install
	$(BIN)/python migrations/regenerate.py
