# netwarden: `make demo` to see it work, `make test` to check it. See README.md.
SHELL := /bin/bash
VENV := .venv
PYTEST_ARGS ?= -q

.PHONY: help setup setup-server demo test lint bench

help:
	@echo "make demo   set up, then analyze a sample capture into the embedded store and print reports"
	@echo "make test   set up (with clickhouse-server), then run the test suite"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks"
	@echo "make setup  system packages, uv and .venv only"

setup:
	bash scripts/setup.sh

setup-server:
	bash scripts/setup.sh --server

demo: setup
	bash scripts/demo.sh

# pytest exits 5 when it collected no tests: that is a failure too.
test: setup-server
	@rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc == 5 ]]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	@if [[ -f bench/run.py ]]; then $(VENV)/bin/python bench/run.py; \
	else echo "make bench: no benchmarks yet (bench/run.py)" >&2; exit 1; fi
