# The two commands (README): `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint clean

run: $(STAMP_RUN)
	$(BIN)/python run_app.py $(ARGS)

test: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/tensorrt_stubs.py .mypy-stubs
	MYPYPATH=.mypy-stubs $(BIN)/mypy engine trainer app
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps 'tensorrt-stubs==10.13.0.35.1'
	touch $@ $(STAMP_RUN)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
