# Two set-up commands: `make demo` and `make test` (ruff, then the tests; either failing fails). Both bootstrap .venv on first use;
# `make docs` builds the documentation site into site/ (mkdocs --strict: a broken link fails).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nrtjax-installed

.PHONY: demo test test-slow install bench docs clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nrtjax demo

# glibc's malloc on huge pages, as the nrtjax command runs (experiments/_env.py); ignored
# where glibc or the kernel lacks it, and a GLIBC_TUNABLES you set is used instead (timed
# with and without on this noisy machine: no clear gain for the tests, which are mostly short
# runs and compiles).
HUGEPAGES := GLIBC_TUNABLES=$${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}

# The tests share one JAX compilation cache, fresh for each run and removed after it: many of
# them run a job in a subprocess that compiles what another test's job compiled already, and
# most compile the same small programs as others (each eager operation on a new shape is a
# compile of its own); results are the same executables. Every compile goes in, however
# short (a minimum of 0 s): 535 s for the suite against 895 s when only compiles of 0.1 s or
# more went in, one run each on 2 idle cores (the cache grows to about 40 MB). With the cache
# shared, the workers steal tests from each other's files (--dist worksteal) instead of
# taking whole files.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	cache=$$(mktemp -d) && JAX_COMPILATION_CACHE_DIR=$$cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	  $(HUGEPAGES) $(PY) -m pytest -q -n 2 --dist worksteal; rc=$$?; rm -rf "$$cache"; exit $$rc

test-slow: $(STAMP)
	$(HUGEPAGES) $(PY) -m pytest -q -m slow

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(PY) scripts/bench_grfnn.py

clean:
	rm -rf outputs multirun .pytest_cache site
