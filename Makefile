# otel-audit: the two commands a fresh machine needs are `make demo` and `make test`.
# Everything else (venv, Python deps, the collector build, rsyslog) is set up on demand.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.deps-stamp
PYTEST_ARGS ?=

.PHONY: help venv collector siem-deps test lint typecheck demo bench clean

help:
	@echo "make demo   - real security events -> otel-audit -> collector -> SIEM sinks, shown as a table"
	@echo "make test   - install everything and run the whole test suite (plus lint and types)"
	@echo "make bench  - run the benchmarks (prints ratios against the baselines)"
	@echo "make lint   - ruff + mypy --strict"

$(DEPS_STAMP): pyproject.toml native/re2hold/setup.py native/re2hold/src/otel_audit_re2hold.cc \
		scripts/build-re2hold.sh native/otlpwire/setup.py native/otlpwire/src/otel_audit_otlpwire.c \
		scripts/build-otlpwire.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[presidio,re2]' --group dev
	scripts/build-re2hold.sh $(BIN)/python
	scripts/build-otlpwire.sh $(BIN)/python
	@touch $@

venv: $(DEPS_STAMP)

collector:
	scripts/build-collector.sh >/dev/null

siem-deps:
	scripts/install-siem-deps.sh

test: venv collector siem-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

lint: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

demo: venv collector siem-deps
	$(BIN)/python examples/demo.py

bench: venv
	$(BIN)/python benchmarks/bench_processor.py
	@for b in benchmarks/bench_redaction.py benchmarks/bench_export.py benchmarks/bench_http.py; do \
	  if [ -f $$b ]; then echo "== $$b"; $(BIN)/python $$b || exit 1; fi; done

clean:
	rm -rf $(VENV) .cache _e2e .pytest_cache .mypy_cache .ruff_cache
