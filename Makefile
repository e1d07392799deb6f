# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench test-integration clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e ".[otel]" --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/support_bot.py

lint: $(STAMP)
	$(PY) -m ruff check aisys tests benchmarks examples
	$(PY) -m ruff format --check aisys

typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy --strict tests/typing

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

test-integration: $(STAMP)
	$(PY) -m pytest -q -m integration tests/integration

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
