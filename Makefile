# The two commands (README): `make run` and `make test`. Both create .venv on first use, from the lock files in
# requirements/ (exact versions with hashes: a fresh machine gets what the suite passed with).
#   make run          the plain install (no PyTorch: the app and the CPU runtime) + the app on the bundled model
#   make test         everything (training extra and development tools) + linters, layering, types, the suite
#   make lock         re-resolve requirements/*.txt from pyproject.toml after changing a dependency (the pins that
#                     still fit are kept; `make lock UPGRADE=1` takes the newest allowed versions)
#   make test-latest  the suite on the newest versions pyproject.toml allows, in .venv-latest (before a release)
#   make graphs       export the bundled models' ONNX graphs again (after retraining one: a test says when)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# One resolution for every platform and Python the project supports, with the hash of every file it may install
UV_COMPILE := UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip compile --quiet --universal --generate-hashes \
	--custom-compile-command "make lock" --constraint requirements/constraints.in $(if $(UPGRADE),--upgrade)
TENSORRT_STUBS := tensorrt-stubs==10.13.0.35.1

.PHONY: run test checks lock test-latest graphs clean

run: $(STAMP_RUN)
	$(BIN)/python run_app.py $(ARGS)

test: $(STAMP_DEV)
	$(BIN)/python scripts/check_lock.py
	$(MAKE) --no-print-directory checks VENV=$(VENV)

# The checks themselves, on whichever environment VENV names
checks:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/tensorrt_stubs.py .mypy-stubs
	MYPYPATH=.mypy-stubs $(BIN)/mypy engine trainer app
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The project itself goes in editable, without its dependencies (the lock holds them) and without build isolation
# (setuptools comes from the lock too: nothing is resolved at install time)
$(STAMP_RUN): requirements/app.txt | $(VENV)/bin/python
	$(PIP) --require-hashes -r requirements/app.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_DEV): requirements/dev.txt requirements/stubs.txt | $(VENV)/bin/python
	$(PIP) --require-hashes -r requirements/dev.txt
	$(PIP) --require-hashes --no-deps -r requirements/stubs.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@ $(STAMP_RUN)

lock: $(STAMP_DEV)
	$(UV_COMPILE) pyproject.toml requirements/build.in -o requirements/app.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra train -o requirements/train.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt
	echo "$(TENSORRT_STUBS)" | $(UV_COMPILE) --no-deps - -o requirements/stubs.txt
	$(BIN)/python scripts/check_lock.py --stamp
	@echo "locked: requirements/*.txt (commit them with pyproject.toml)"

graphs: $(STAMP_DEV)
	for model in assets/models/*/*.safetensors; do \
		$(BIN)/python -m engine export "$$model" --out "$$(dirname "$$model")" || exit 1; \
	done

test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q -e '.[dev]'
	.venv-latest/bin/python -m pip install -q --no-deps $(TENSORRT_STUBS)
	.venv-latest/bin/python -m pip list --format=freeze > .venv-latest/versions.txt
	$(MAKE) --no-print-directory checks VENV=.venv-latest
	@echo "passed with the newest allowed versions (.venv-latest/versions.txt); make lock takes them"

clean:
	rm -rf $(VENV) .venv-latest .pytest_cache .mypy_cache .ruff_cache
