# hitl-router: `make demo` runs the product, `make test` runs the whole suite.
# Both create .venv themselves; only Python 3.11+ and make are needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: venv test lint demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hitl-router needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

# Uses the Redis on 127.0.0.1:6379 when it answers (database 11), else an embedded one.
test: venv lint
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/hitl dev

# Every benchmark, each against a baseline measured in the same run; figures in README.
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
