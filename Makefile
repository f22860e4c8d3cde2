# Every target creates its own virtual environment (.venv) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml

.PHONY: run demo test lint bench clean

$(BIN)/itinerabot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
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

bench: $(BIN)/itinerabot
	$(BIN)/python bench/bench_render.py

clean:
	rm -rf $(VENV) *.egg-info
