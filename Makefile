# Everything bootstraps a virtual environment in .venv from pyproject.toml.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
SITE := $(abspath _build/html/index.html)

# nbgrader shells out to tools (jupyter, python) that must come from the venv.
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg
export KERAS_BACKEND := numpy
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Small matrices on 2 cores: BLAS threads only add contention.
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1

.PHONY: help venv book test test-portability lint exercises release grade feedback collect export grade-demo bench clean

help:
	@echo "make book        build the book into _build/html (creates .venv on first use)"
	@echo "make test        run every test: lint, library, book build, grading, browser"
	@echo "make test-portability   the claim tests under each OpenBLAS kernel this CPU can run"
	@echo "make exercises   regenerate exercises/ from solutions/ with nbgrader"
	@echo "make release A=ps2_initializers   regenerate, register in the gradebook (and publish to the exchange with COURSE_ID)"
	@echo "make grade A=ps2_initializers   autograde every submission (SCHEDULER=tcp://host:8786 for a Dask cluster)"
	@echo "                 (in a bubblewrap sandbox; UNSAFE=1 grades without isolation)"
	@echo "make feedback A=ps2_initializers   (re)generate every student's feedback HTML"
	@echo "make collect A=ps2_initializers LMS=canvas|moodle   sort an LMS download into submitted/"
	@echo "make export A=ps2_initializers LMS=canvas|moodle|generic   grades as a CSV for an LMS"
	@echo "make grade-demo  grade sample submissions in a scratch course and print the table"
	@echo "make bench       print performance ratios"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	env -u MPLBACKEND $(BIN)/jupyter-book build -W -n --keep-going .
	@echo "The book is at file://$(SITE)"

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests benchmarks nbgrader_config.py
	$(BIN)/mypy

test: $(STAMP)
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

test-portability: $(STAMP)
	PY=$(BIN)/python bash .ci/portability

exercises: $(STAMP)
	$(BIN)/python -m course_lib.grading.release

release: $(STAMP)
	$(BIN)/python -m course_lib.grading.release --publish $(A)

grade: $(STAMP)
	$(BIN)/python -m course_lib.grading.batch $(A) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) \
		$(if $(UNSAFE),--unsafe-no-isolation)

feedback: $(STAMP)
	$(BIN)/nbgrader generate_feedback $(A) --force

collect: $(STAMP)
	$(BIN)/python -m course_lib.grading.intake collect $(A) --lms $(LMS)

export: $(STAMP)
	$(BIN)/python -m course_lib.grading.intake export $(A) --lms $(or $(LMS),generic)

grade-demo: $(STAMP)
	$(BIN)/python -m course_lib.grading.demo

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build .jupyter_cache
