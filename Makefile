# stream-od: the commands a developer, CI and a new user type.  Each target sets up what it
# needs itself: a virtual environment in .venv, the project installed into it, and the local
# Kafka broker (fetched from Maven Central on first use, see deploy/kafka/).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA := PYTHON=$(abspath $(PY)) deploy/kafka/kafka.sh
PYTEST_ARGS ?=

.PHONY: help venv lint lock test test-fast demo demo-zeek kafka-up kafka-down clean

help:
	@echo "make demo        run the whole job end to end: local Kafka, train, stream, alerts, metrics"
	@echo "make demo-zeek   the same on labelled Zeek conn logs (ZEEK_DIR, default ../shared/data/zeek;"
	@echo "                 ZEEK_SCHEMA=zeek-conn-windows runs the two-stage windows pipeline)"
	@echo "make test        run the full test suite (starts Kafka if needed, stops what it started)"
	@echo "make test-fast   pure-logic tests only (no Kafka, no slow training)"
	@echo "make lint        ruff (lint and format check) and mypy: what CI runs before the tests"
	@echo "make lock        re-pin the images' dependencies with hashes (requirements/*.lock)"
	@echo "make kafka-up    start the local single-node Kafka on 127.0.0.1:9092"
	@echo "make kafka-down  stop it (make kafka-down WIPE=1 also deletes its data and logs)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is missing: install python3 (3.11 or newer)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed, found $$($(PYTHON) --version)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[train,test,lint]'
	touch $@

kafka-up: $(STAMP)
	@$(KAFKA) up

kafka-down:
	@$(KAFKA) down $(if $(WIPE),--wipe)

# The full suite.  Reuses a broker that is already up; otherwise starts one and stops it after.
# pytest's exit code 5 ("no tests collected") is a failure here: a suite that ran nothing passed nothing.
test: $(STAMP)
	@started=0; \
	if ! $(KAFKA) status 2>/dev/null; then $(KAFKA) up || exit 1; started=1; fi; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing"; rc=1; fi; \
	exit $$rc

# The images' pinned, hashed dependencies (Linux x86_64, Python 3.11), resolved from
# pyproject.toml by uv: the worker's (requirements/worker.lock) and the trainer's, with the
# `train` extra (requirements/trainer.lock). Run after changing a dependency; commit the result.
LOCK_ARGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --custom-compile-command "make lock"
lock: $(STAMP)
	$(PY) -m pip install -q 'uv==0.13.9'
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) -o requirements/worker.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra train $(LOCK_ARGS) -o requirements/trainer.lock

# Zero findings is the bar: any finding fails (CI runs this before the tests).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast: $(STAMP)
	$(PY) -m pytest -m "not kafka and not slow" $(PYTEST_ARGS)

# The main job end to end: Kafka up, train if needed, stream, alerts, metrics, summary, Kafka down.
# DATA: the KDD Cup '99 file; DEMO_ARGS: more options of `stream-od demo` (see --help).
# Without the file in either place the demo runs on the stratified sample inside the package.
DATA ?= $(firstword $(wildcard data/kddcup.data_10_percent.gz ../shared/data/kddcup.data_10_percent.gz))
DEMO_ARGS ?=
demo: $(STAMP)
	@started=0; \
	if ! $(KAFKA) status 2>/dev/null; then $(KAFKA) up || exit 1; started=1; fi; \
	$(VENV)/bin/stream-od demo $(if $(DATA),--data $(DATA)) $(DEMO_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; \
	exit $$rc

# The same job on a site's traffic: train on one day of labelled Zeek conn logs (Stratosphere,
# see $(ZEEK_DIR)/README.md), replay a later day in event-time order, grade per detailed label.
ZEEK_DIR ?= ../shared/data/zeek
ZEEK_SCHEMA ?= zeek-conn
ZEEK_TRAIN := $(ZEEK_DIR)/008-zeek-mixed.conn.log.labeled
ZEEK_REPLAY := $(ZEEK_DIR)/010-zeek-mixed.conn.log.labeled
demo-zeek: $(STAMP)
	@for f in $(ZEEK_TRAIN) $(ZEEK_REPLAY); do \
	  if [ ! -f "$$f" ]; then \
	    echo "demo-zeek: $$f not found. The Zeek demo needs the labelled conn logs"; \
	    echo "  008-zeek-mixed.conn.log.labeled and 010-zeek-mixed.conn.log.labeled (Stratosphere);"; \
	    echo "  point ZEEK_DIR at the folder that holds them: make demo-zeek ZEEK_DIR=DIR"; \
	    exit 2; \
	  fi; \
	done; \
	started=0; \
	if ! $(KAFKA) status 2>/dev/null; then $(KAFKA) up || exit 1; started=1; fi; \
	$(VENV)/bin/stream-od demo --schema $(ZEEK_SCHEMA) --data $(ZEEK_TRAIN) --replay-data $(ZEEK_REPLAY) $(DEMO_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(KAFKA) down; fi; \
	exit $$rc

clean:
	rm -rf build dist *.egg-info .pytest_cache
