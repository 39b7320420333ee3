# One-command set-up: `make demo` and `make test` create or reuse .venv, install, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Without CUDA, pin the CPU build of torch (an unpinned torch pulls a multi-GB CUDA build).
HAS_CUDA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
CONSTRAINTS := $(if $(HAS_CUDA),,-c constraints-cpu.txt)
PYTEST_ARGS ?= -m "not slow"

.PHONY: install demo test test-all lint clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# A new `make demo` replaces the previous one; `make demo DEMO_ARGS=--resume` continues a killed one.
DEMO_ARGS ?= --overwrite

demo: $(STAMP)
	$(VENV)/bin/gasgnn demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check gasgnn tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache runs
