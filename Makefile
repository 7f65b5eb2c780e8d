# replyassets — `make demo`, `make test`, `make ui`. Everything runs from .venv, created on demand.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1
PYTEST_ARGS ?=
# The suite runs on four xdist workers, a work unit per worker at a time: a module (its module
# fixtures such as a `dg dev` server built once), or the modules sharing one session fixture, or
# a single long test (replyassets_tests/conftest.py: GroupScheduling, LONGEST_FIRST), the longest
# units first, in collection order (--no-loadscope-reorder). Its system tests wait on
# subprocesses, servers and the daemon for much of their time: on 2 cores two workers kept the
# CPUs busy 129 % of 200 %, three 138 %. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 4

.PHONY: demo test check ui install bytecode bench sample clean-data chromium postgres validate-defs fuzz

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

# uv installs the project, bootstrapped into .venv by pip from the package registry: a fresh
# install with cold caches took 72-130 s against pip's 390-855 s (2 loaded cores). torch is
# pinned to 2.13.0 in pyproject.toml and must be the local CPU build: uv does not read pip's
# configuration, so it is handed the wheel folders of PIP_FIND_LINKS; without that variable pip
# installs torch first (with the machine's pip configuration) and uv keeps it.
# --compile-bytecode writes every package's .pyc once, at install: uv does not by default, and
# where PYTHONDONTWRITEBYTECODE is set (as on some CI machines) no process ever writes one, so
# each process (a run worker, a training program, a code server) compiled torch, transformers,
# peft and dagster from source again: `import peft, trl` took 28.9 s of CPU without .pyc files
# and 12.1 s with them.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install -q 'uv>=0.13,<0.14'
	$(if $(strip $(PIP_FIND_LINKS)),,$(PY) -m pip install -q "$$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')")
	$(UV) pip install -q --compile-bytecode --python $(PY) $(foreach l,$(PIP_FIND_LINKS),--find-links $(l)) -e '.[dev]'
	@touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## Materialize the whole graph offline on the bundled sample and print where the report is.
demo: install
	$(PY) -m replyassets.demo

## The Dagster UI (webserver + daemon) on 127.0.0.1:$(UI_PORT), through `dg dev` and workspace.yaml.
## It starts in $(DAGSTER_HOME), the instance's folder: `dg dev` warns when it starts beside a
## dagster.yaml that is not DAGSTER_HOME's (the repository's top-level one is the template that
## `install` copies there); PYTHONPATH keeps this checkout's code the one loaded.
UI_PORT ?= 3000
ui: install
	cd $(DAGSTER_HOME) && PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(CURDIR)/$(VENV)/bin/dg dev -h 127.0.0.1 -p $(UI_PORT) -w $(CURDIR)/workspace.yaml

## The project's own modules compiled once before the suite (git-ignored __pycache__ folders):
## the suite starts hundreds of processes that import them, and compiles nothing again where
## PYTHONDONTWRITEBYTECODE is set. A .pyc older than its source is not used.
bytecode: install
	@$(PY) -m compileall -q -j 0 replyassets replyassets_tests benchmarks >/dev/null

## Debian's chromium for the browser tests (never a downloaded browser); without it they fail, naming why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
	      || echo "chromium could not be installed: the browser tests will fail"; \
	  else echo "chromium not installed and cannot install it: the browser tests will fail"; fi; }

## Debian's PostgreSQL for the multi-machine tests (each test run starts its own server in a
## temporary folder, loopback only). No server, no pass.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q postgresql >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1); \
	  fi; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "PostgreSQL is needed: install Debian's postgresql package"; exit 1; }; }

## The whole test suite (what CI runs): prints the 25 slowest tests at the end; every test's
## time is in test-artifacts/junit.xml (git-ignored).
test: install chromium postgres bytecode
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 \
	  --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

## The fast tier for the inner loop: every test not marked slow or browser (unit tests, small
## Dagster runs), in a few minutes.
check: install postgres bytecode
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow and not browser" --durations=10 $(PYTEST_ARGS)

## Only the property tests (@given: the "hypothesis" marker), random seeds, 20x the examples
## (HYPOTHESIS_PROFILE=fuzz; `make test` runs the derandomized "ci" profile: one result per
## commit). Every failure it finds becomes an @example(...) on its test.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider -m hypothesis --timeout 3600 $(PYTEST_ARGS) replyassets_tests

## Load the definitions the way a deployment does and report any error (`dg check defs`).
validate-defs: install
	$(VENV)/bin/dg check defs

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

sample: install
	$(PY) scripts/make_sample.py

## Remove generated data (the DuckDB file, models, adapters, reports) and the Dagster instance.
clean-data:
	rm -rf data/replyassets.duckdb data/replyassets.duckdb.wal data/replyassets.duckdb.lock data/lake data/models data/adapters data/reports data/runs data/exports $(DAGSTER_HOME)
