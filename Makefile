# Two commands a newcomer needs: `make demo` and `make test`.
# Each creates or updates the virtual environment in .venv on its own.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[all]" --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/httpx-resilience demo

# coverage starts before pytest so the pytest11 plugin's early import of the
# package is measured too.
test: $(STAMP)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --fail-under=90

# The documentation site (mkdocs-material, API reference by mkdocstrings) in site/;
# --strict turns every broken link or reference into an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict tests/typing

# Benchmarks (minutes; nginx is installed with apt-get when missing). Each script
# writes its own bench/RESULTS_*.md; bench/RESULTS.md gathers them.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[all]" --group dev --group bench
	$(BIN)/python bench/run.py
	$(BIN)/python bench/speed_bench.py
	$(BIN)/python bench/overhead_bench.py
	$(BIN)/python bench/instructions_bench.py
	$(BIN)/python bench/profile_bench.py
	$(BIN)/python bench/aiohttp_compare.py
	$(BIN)/python bench/redis_bench.py
	$(BIN)/python bench/throttle_bench.py
	$(BIN)/python bench/policies_bench.py
	$(BIN)/python bench/observe_bench.py
	$(BIN)/python bench/combine.py

clean:
	rm -rf $(VENV) .coverage htmlcov
