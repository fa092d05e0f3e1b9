# hitl-router: `make demo` runs the product, `make test` runs the whole suite.
# Both create .venv themselves; only Python 3.11+ and make are needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# Installs go through uv (itself from PyPI, into the venv): it resolves and installs the dev
# environment in a fraction of pip's time, which is most of a fresh clone's `make test` setup.
INSTALL := $(BIN)/python -m uv pip install --quiet --python $(BIN)/python
BROWSER_STAMP := $(VENV)/.installed-browser

.PHONY: venv test soak lint ruff mypy demo bench docs clean browser node

# Test processes (pytest-xdist). Most tests wait on Redis, Slack's stand-in or a child
# process rather than compute, so four share two cores well; each test has its own key prefix.
JOBS ?= 4
# How xdist hands out tests: `worksteal` splits the suite evenly, and an idle process takes half of
# the busiest one's remaining tests, so the run does not end waiting on one process's long queue.
DIST ?= worksteal
# `make soak`: how many whole-suite runs, and extra arguments for them (e.g. SOAK_ARGS=--shuffle).
RUNS ?= 5
SOAK_ARGS ?=

$(STAMP): pyproject.toml sandbox/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hitl-router needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(INSTALL) -e '.[dev]' -e sandbox
	@touch $(STAMP)

venv: $(STAMP)

# `make lint` is the whole check: ruff, and mypy on the product's three packages and the sandbox
# (settings in pyproject.toml's [tool.mypy]).
lint: ruff mypy

ruff: venv
	$(BIN)/ruff check .

mypy: venv
	$(BIN)/mypy

# Browser tests: Playwright in .venv, and Debian's chromium when it is missing and apt-get can run
# (browser downloads are impossible here). Without Chromium the browser tests skip and say why.
$(BROWSER_STAMP): $(STAMP)
	$(INSTALL) -e '.[dev,browser]' -e sandbox
	@touch $(BROWSER_STAMP)

browser: $(BROWSER_STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$HITL_CHROMIUM" ] || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  if command -v apt-get >/dev/null 2>&1 && { [ -z "$$SUDO" ] || sudo -n true 2>/dev/null; }; then \
	    echo "make: installing chromium with apt-get for the browser tests"; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null \
	      || echo "make: could not install chromium; the browser tests will skip"; \
	  else echo "make: no chromium, and no apt-get (or sudo) to install it; the browser tests will skip"; fi; }

# The TypeScript client's tests (tests/typescript/) need Node 20+ and npm: Debian's nodejs and npm
# when missing and apt-get can run. Without them that test skips and says why.
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  if command -v apt-get >/dev/null 2>&1 && { [ -z "$$SUDO" ] || sudo -n true 2>/dev/null; }; then \
	    echo "make: installing nodejs and npm with apt-get for the TypeScript client's tests"; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null \
	      || echo "make: could not install nodejs/npm; the TypeScript client's test will skip"; \
	  else echo "make: no node, and no apt-get (or sudo) to install it; the TypeScript client's test will skip"; fi; }

# Uses the Redis on 127.0.0.1:6379 when it answers (database 11), else an embedded one.
# Ruff first (a second), then mypy beside the suite: mypy is one process for some 45 CPU-seconds
# from a clean clone, and the suite leaves a core idle while its last tests finish. The whole
# suite, browser tests included, runs in file order (pytest-randomly off) over $(JOBS) processes;
# the 20 slowest tests are listed at the end, then mypy's answer. Either failing fails the target.
test: venv browser node
	$(BIN)/ruff check .
	@$(BIN)/mypy > $(VENV)/mypy.out 2>&1 & mypy=$$!; \
	$(BIN)/python -m pytest -rs -p no:randomly -n $(JOBS) --dist $(DIST) --durations=20; suite=$$?; \
	wait $$mypy; typed=$$?; echo "mypy:"; cat $(VENV)/mypy.out; \
	[ $$suite -eq 0 ] && [ $$typed -eq 0 ]

# The whole suite $(RUNS) times; lists every test whose outcome differed between runs.
soak: venv browser
	$(BIN)/python -m tests.soak --runs $(RUNS) $(SOAK_ARGS) -- -n $(JOBS)

demo: venv
	$(BIN)/hitl dev

# Every benchmark, each against a baseline measured in the same run; figures in docs/benchmarks.md.
bench: venv
	$(BIN)/python -m bench

# The guides as a site (MkDocs, Material theme) in site/; strict, so a broken link or a page
# missing from mkdocs.yml's nav fails. `make test` builds it too (tests/test_docs.py).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) build site *.egg-info
