# Red Mud Exchange — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app exchange
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit lint format bench migrate demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

exchange/translations/zh_Hans_CN/LC_MESSAGES/messages.mo: exchange/translations/zh_Hans_CN/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d exchange/translations

install: $(STAMP) exchange/translations/zh_Hans_CN/LC_MESSAGES/messages.mo ## Create .venv and install the pinned dependencies

migrate: install ## Apply the database migrations (DATABASE_URL, default SQLite in instance/)
	$(BIN)/alembic upgrade head

demo: migrate ## Load the demo companies and users (idempotent)
	$(FLASK) load-demo

run: demo ## Install, migrate, load demo data and serve on http://127.0.0.1:5000
	$(FLASK) run --host 127.0.0.1 --port 5000

# Test files run in parallel workers (one file stays in one worker, so a module's live server
# and its databases are built once); TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= auto
test: install ## Run the test suite (set TEST_DATABASE_URL to add PostgreSQL)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install ## ruff check, format check and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check exchange tests benchmarks
	$(BIN)/mypy exchange

format: install ## Format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format exchange tests benchmarks

bench: install ## Run the benchmarks and print the table
	$(BIN)/python -m benchmarks

messages: install ## Extract translatable strings and update the catalogues
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o exchange/translations/messages.pot .
	$(BIN)/pybabel update -i exchange/translations/messages.pot -d exchange/translations

clean: ## Remove the virtual environment and the local database
	rm -rf $(VENV) instance
