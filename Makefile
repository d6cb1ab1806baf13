# Every target creates .venv (if missing) and installs the repo's packages in editable mode.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := -e .[test] -e providers/aws[test] -e providers/gcp[test] -e providers/azure[test]
# Two workers, a test file per worker at a time (module fixtures start one sandbox per file): the
# suite mostly waits on sandboxes and subprocesses, so this halves its time on a 2-core machine.
# `make unit PYTEST_ARGS=` runs it in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install demo test lint typecheck unit bench bench-scale clean

$(STAMP): pyproject.toml providers/aws/pyproject.toml providers/gcp/pyproject.toml providers/azure/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PKGS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lbprov demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lbprov providers tests bench
	$(BIN)/ruff format --check lbprov providers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# Call counts per operation for each provider, then the controller at scale (JSON on stdout).
bench: $(STAMP)
	$(BIN)/python bench/aws_calls.py
	$(BIN)/python bench/gcp_calls.py
	$(BIN)/python bench/azure_calls.py
	$(BIN)/python bench/scale.py

# The three clouds' scale runs with --compare-workers, JSON + markdown tables into bench/results/
# (about an hour at 1,000 Services on a quiet 2-core machine; `make bench-scale SERVICES=50` in minutes).
SERVICES ?= 1000
bench-scale: $(STAMP)
	$(BIN)/python bench/scale_all.py --services $(SERVICES)

clean:
	rm -rf $(VENV)
