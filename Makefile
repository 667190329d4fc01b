# simfunnel: `make demo` runs the main job, `make test` runs every check.
# Both set themselves up on a fresh machine: a .venv with the project installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: demo test lint typecheck pytest bench lab clean venv

venv: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv support is missing; installing it with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name simfunnel --display-name "simfunnel" >/dev/null
	@touch $(STAMP)

demo: $(STAMP)
	@for s in volume_heavy quality_heavy balanced; do $(BIN)/simfunnel run $$s || exit 1; echo; done

lint: $(STAMP)
	$(BIN)/ruff check simfunnel tests benchmarks
	$(BIN)/ruff format --check simfunnel tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
