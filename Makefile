# netwarden: `make demo` to see it work, `make test` to check it. See README.md.
SHELL := /bin/bash
VENV := .venv
PYTEST_ARGS ?= -q

.PHONY: help setup setup-server demo demo-offline test lint bench

help:
	@echo "make demo   set up, then a live demo (root): sensors in two network namespaces, a"
	@echo "            collector, real HTTP/DNS/bulk traffic over IPv4 and IPv6, reports"
	@echo "make demo-offline  set up, then analyze a sample capture into a store and print reports"
	@echo "make test   set up (with clickhouse-server), then run the test suite"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks (the live ones need root)"
	@echo "make setup  system packages, uv and .venv only"

setup:
	bash scripts/setup.sh

setup-server:
	bash scripts/setup.sh --server

demo: setup
	$(VENV)/bin/python scripts/demo_live.py

demo-offline: setup
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
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/enrichment.py
	$(VENV)/bin/python bench/geo_lookup.py
