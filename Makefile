# Two entry points: `make demo` and `make test`. Both bootstrap .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: demo test lint clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Torch first, pinned to the local CPU build: a bare `torch` requirement would pull a CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgevision demo --project runs --name demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -ra tests

lint: $(STAMP)
	$(BIN)/ruff check edgevision tests benchmarks examples
	$(BIN)/ruff format --check edgevision tests benchmarks examples

clean-venv:
	rm -rf $(VENV)
