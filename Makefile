# simfunnel: `make demo` runs the main job, `make test` runs every check.
# Both set themselves up on a fresh machine: a .venv with the project installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: demo test lint typecheck pytest bench bench-optimize lab notebooks docs clean venv

venv: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv support is missing; installing it with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# The main job: the volume-vs-quality report on the bundled scenarios.
demo: $(STAMP)
	$(BIN)/simfunnel report volume_vs_quality --out reports/volume_vs_quality

lint: $(STAMP)
	$(BIN)/ruff check simfunnel tests benchmarks
	$(BIN)/ruff format --check simfunnel tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser check (tests/test_browser.py) drives Debian's Chromium through Playwright
# (installed in .venv by pip); Playwright's own browser download is never used.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "chromium is missing; installing it with apt-get"
	apt-get update -qq && apt-get install -y -qq chromium >/dev/null

pytest: $(STAMP) | $(CHROMIUM)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# Every figure of the README's performance section, as ratios measured in one run
# beside absolute figures labelled with the machine (under 10 minutes on 2 cores).
# The optimiser's convergence against a dense grid takes longer: bench-optimize.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_experiments.py
	$(BIN)/python benchmarks/bench_reports.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_calibration.py

bench-optimize: $(STAMP)
	$(BIN)/python benchmarks/bench_optimize.py

# JupyterLab on the notebooks, with the project's environment as its Python kernel
# (as root, e.g. in a container, jupyter refuses to start without --allow-root).
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_FLAGS)

# Re-execute the committed notebooks (their outputs are what nbval checks).
notebooks: $(STAMP)
	$(BIN)/python -c "from simfunnel.reporting.report import available_notebooks, refresh_notebook; [print(refresh_notebook(p)) for p in available_notebooks().values()]"

# docs/scenario-reference.md from the scenario schema's field descriptions
# (tests/test_docs.py fails when the committed page is not current).
docs: $(STAMP)
	$(BIN)/python -m simfunnel._docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
