# Set-up is implicit: every target builds the virtual environment first if it is missing or stale.
# torch/torchvision are pinned through requirements/constraints.txt on every pip call (why: docs/sources.md#toolchain).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip install --disable-pip-version-check -c requirements/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install test lint demo table1 bench

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## the tests (what CI runs): two pytest-xdist workers, one module per worker at a time (module fixtures
## run once); the SLURM demo module starts first and the rest of the suite runs beside it
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

## the linter the team shares (configured in pyproject.toml); CI runs it before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## the main job: the demo DAG (config/demo.yaml, the Snakefile's default) end to end on the CPU, then its report
demo: $(STAMP)
	$(VENV)/bin/snakemake --cores 2 all_tables
	$(VENV)/bin/snakemake --cores 2 all_tables --report demo/report.html

table1: $(STAMP)
	$(PY) -m mednext table1

bench: $(STAMP)
	$(PY) benchmarks/bench_mednext.py
