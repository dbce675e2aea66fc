# kittylab: `make lab` opens the tutorial, `make test` runs the whole suite.
#
# Both set the environment up first: a conda environment in ./.conda-env when
# `conda` is on PATH, a local venv in ./.venv otherwise (the venv route is what
# CI uses). Choose explicitly with `make ENV=venv ...` or `make ENV=conda ...`.
# The environment is (re)installed only when its recipe files change.
#
# Pass-through variables:
#   LAB_ARGS      extra arguments for `jupyter lab`
#   PYTEST_ARGS   extra arguments for pytest (e.g. PYTEST_ARGS="-m 'not browser'")
#   XDIST         pytest-xdist options (default: -n auto --dist loadscope; XDIST= to turn off)
#   BENCH_ARGS    extra arguments for benchmarks/run
#   PYTHON        interpreter used to create the venv (default: python3)
#   MY_NOTEBOOKS  the learner's working copies of the lessons (default: my-notebooks, gitignored)
#   LESSON        the lesson `make reset-lesson` restores: its number (03) or `all`

SHELL := /bin/bash

PYTHON ?= python3
CONDA  ?= $(shell command -v conda 2>/dev/null)
ENV    ?= $(if $(CONDA),conda,venv)

ifeq ($(ENV),conda)
ENV_DIR := .conda-env
else ifeq ($(ENV),venv)
ENV_DIR := .venv
else
$(error ENV must be "conda" or "venv", not "$(ENV)")
endif

PY    := $(ENV_DIR)/bin/python
STAMP := $(ENV_DIR)/.installed

XDIST       ?= -n auto --dist loadscope
PYTEST_ARGS ?=
LAB_ARGS    ?=
BENCH_ARGS  ?=
MY_NOTEBOOKS ?= my-notebooks
LESSON       ?=

# Jupyter refuses to start as root unless told; CI containers and some
# workstations run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab lessons reset-lesson test bench clean distclean

setup: $(STAMP)

# conda: environment.yml lists the packages and ends with `pip: -e .`,
# so it depends on pyproject.toml too.
.conda-env/.installed: environment.yml pyproject.toml
	if [ -d .conda-env/conda-meta ]; then \
	  "$(CONDA)" env update -p ./.conda-env -f environment.yml; \
	else \
	  "$(CONDA)" env create -p ./.conda-env -f environment.yml; \
	fi
	touch $@

# venv: (re)create it when there is none with a working pip, then install the
# project in editable mode with its test extra (which includes the lab extra).
.venv/.installed: pyproject.toml
	if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then \
	  $(PYTHON) -m venv --clear .venv; \
	fi
	.venv/bin/python -m pip install -e '.[test]'
	touch $@

# The tutorial opens on working copies: what a learner runs and saves stays in $(MY_NOTEBOOKS)/
# (gitignored, with its kitty-workspace/), so notebooks/ keeps the lessons as committed and
# `make test` still compares against them after a learning session.
# The copies are trusted (they are this repository's lessons), so JupyterLab draws their saved
# widgets before they run.
lab: setup lessons
	$(PY) -m jupyter trust $(MY_NOTEBOOKS)/*.ipynb
	$(PY) -m jupyter lab --notebook-dir=$(MY_NOTEBOOKS) $(ALLOW_ROOT) $(LAB_ARGS)

# Copy the lessons (and their data files) that are not in $(MY_NOTEBOOKS)/ yet; never overwrites,
# but names, one line each, the copies an older kittylab made (they import modules that moved since)
# and those older than the repository's lesson (after a `git pull`), and how to update them.
lessons:
	@mkdir -p $(MY_NOTEBOOKS); \
	for f in notebooks/*; do \
	  [ -e "$(MY_NOTEBOOKS)/$${f##*/}" ] || cp "$$f" $(MY_NOTEBOOKS)/; \
	done; \
	$(PYTHON) tools/check_lessons.py $(MY_NOTEBOOKS)

# Start a lesson afresh: `make reset-lesson LESSON=03` puts 03's notebook back as committed
# (`LESSON=all` every one); the learner's copy, if it differs, is kept in earlier-runs/ (one kept
# per lesson). A lesson with a workspace of its own (08, 80-83, 90) has it moved aside to
# kitty-workspace/earlier-runs/ (one kept per workspace), so it starts over; 01-07 share the
# story's workspace, which each lesson's first cell prepares.
reset-lesson:
	@case "$(LESSON)" in \
	  all) set -- notebooks/*.ipynb ;; \
	  [0-9][0-9]) set -- notebooks/$(LESSON)-*.ipynb ;; \
	  *) echo "make reset-lesson: say which lesson, e.g. LESSON=03 (or LESSON=all)" >&2; exit 2 ;; \
	esac; \
	[ -e "$$1" ] || { echo "make reset-lesson: there is no lesson $(LESSON) in notebooks/" >&2; exit 2; }; \
	mkdir -p $(MY_NOTEBOOKS); \
	runs=$(MY_NOTEBOOKS)/kitty-workspace/earlier-runs; \
	for f in "$$@"; do \
	  copy="$(MY_NOTEBOOKS)/$${f##*/}"; kept=$(MY_NOTEBOOKS)/earlier-runs/$${f##*/}; \
	  if [ -e "$$copy" ] && ! cmp -s "$$f" "$$copy"; then \
	    mkdir -p $(MY_NOTEBOOKS)/earlier-runs && mv "$$copy" "$$kept" || exit 1; \
	  else kept=; fi; \
	  cp "$$f" $(MY_NOTEBOOKS)/ && echo "reset $$copy"; \
	  [ -z "$$kept" ] || echo "  your copy was kept as $$kept (replacing the one kept before)"; \
	  case "$${f##*/}" in \
	    08-*) own=workbench ;; 80-*) own=two-cas ;; 81-*) own=ocsp ;; 82-*) own=renewal ;; \
	    83-*) own=migration ;; 90-*) own="workshop workshop-ca" ;; *) own= ;; \
	  esac; \
	  for w in $$own; do \
	    [ -d "$(MY_NOTEBOOKS)/kitty-workspace/$$w" ] || continue; \
	    mkdir -p "$$runs" && rm -rf "$$runs/$$w" && mv "$(MY_NOTEBOOKS)/kitty-workspace/$$w" "$$runs/$$w" && \
	    echo "  its workspace kitty-workspace/$$w/ was moved aside to $$runs/$$w/ (replacing the one set aside before): the lesson starts over"; \
	  done; \
	done

test: setup
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

bench: setup
	@if [ -e benchmarks/run ]; then \
	  echo "$(PY) benchmarks/run $(BENCH_ARGS)"; \
	  $(PY) benchmarks/run $(BENCH_ARGS); \
	else \
	  echo "make bench: there is no benchmarks/run yet, nothing to run"; \
	fi

# Build and test leftovers. Keeps the environments and any kitty-workspace/
# (a workspace holds your CA's private key).
clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis test-artifacts benchmarks/out
	find . \( -path ./.venv -o -path ./.conda-env -o -path ./.git \) -prune -o \
	  \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

# clean, and remove the environments too (the next `make` recreates them).
distclean: clean
	rm -rf .venv .conda-env
