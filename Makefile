# Schoolgate developer commands. Needs only python3 (>= 3.11), GNU make and git.
#
#   make test     lint + type-check + tests (what CI runs, via .ci/run)
#   make run      serve the app on http://127.0.0.1:8000
#   make help     list every target
#
# The virtual environment (.venv) is built on demand from the hashed lock files
# in requirements/ and rebuilt whenever a lock file or pyproject.toml changes.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-builtin-variables

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS_VENV := .venv-tools
MAIN_LOCK := requirements/main.lock
DEV_LOCK := requirements/dev.lock

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k policy -x".
PYTEST_ARGS ?=
# Extra arguments for pip-compile, e.g. make lock LOCK_ARGS=--upgrade
# or make lock LOCK_ARGS="--upgrade-package fastapi".
LOCK_ARGS ?=
# Pinned so that `make lock` writes the same files on every machine.
PIP_TOOLS_REQS ?= pip==26.3 pip-tools==7.6.2

# This machine's pip config adds file:// indexes that lack most projects; pip
# warns once per project per index. Drop only that harmless warning.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

LOCK_FLAGS := --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links --quiet

.PHONY: help venv lint types test run demo format lock bench clean

help: ## list the targets
	@echo "Schoolgate make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) \
		| sed -E 's/^([a-z-]+):.*## (.*)$$/\1|\2/' \
		| awk -F'|' '{ printf "  %-8s %s\n", $$1, $$2 }'

venv: $(STAMP) ## create/refresh .venv from requirements/dev.lock

# Reuses a healthy .venv (pip only changes what differs from the lock); a broken
# or too-old one is recreated. `make clean venv` always starts from scratch.
$(STAMP): $(DEV_LOCK) $(MAIN_LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
		echo "error: '$(PYTHON)' not found. Install Python >= 3.11 or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: Schoolgate needs Python >= 3.11 but '$(PYTHON)' is $$($(PYTHON) -V 2>&1)." >&2; \
		echo "       Run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; }
	@if [ -d $(VENV) ] && ! { $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
			&& $(BIN)/python -m pip --version; } >/dev/null 2>&1; then \
		echo "==> removing broken or outdated virtual environment in $(VENV)"; \
		rm -rf $(VENV); \
	fi
	@if [ ! -x $(BIN)/python ]; then \
		echo "==> creating virtual environment in $(VENV) ($$($(PYTHON) -V 2>&1))"; \
		$(PYTHON) -m venv $(VENV) || { \
			rm -rf $(VENV); \
			echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)." >&2; \
			exit 1; }; \
	fi
	@echo "==> upgrading pip"
	@$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET_PIP)
	@echo "==> installing locked dependencies from $(DEV_LOCK)"
	@$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK) $(QUIET_PIP)
	@echo "==> installing schoolgate (editable, no deps)"
	@$(BIN)/python -m pip install --quiet --no-deps -e . $(QUIET_PIP)
	@touch $@
	@echo "==> virtual environment ready: $(VENV)"

lint: $(STAMP) ## ruff format --check + ruff check
	@echo "==> ruff format --check"
	@status=0; \
	$(BIN)/ruff format --check . || status=1; \
	echo "==> ruff check"; \
	$(BIN)/ruff check . || status=1; \
	exit $$status

types: $(STAMP) ## mypy (strict, configured in pyproject.toml)
	@echo "==> mypy"
	@$(BIN)/mypy

test: $(STAMP) lint types ## lint, types, then pytest (THE check; CI runs this)
	@echo "==> pytest $(PYTEST_ARGS)"
	@$(BIN)/pytest $(PYTEST_ARGS)

run: $(STAMP) ## migrate and serve on http://127.0.0.1:8000
	@echo "==> starting Schoolgate on http://127.0.0.1:8000"
	@$(BIN)/schoolgate serve

demo: $(STAMP) ## try it: a fake Telegram chat with flags to review, on http://127.0.0.1:8000
	@echo "==> starting the Schoolgate demo (a fake Telegram server; nothing leaves this machine)"
	@$(BIN)/python scripts/demo.py

format: $(STAMP) ## ruff format + ruff check --fix
	@echo "==> ruff format"
	@$(BIN)/ruff format .
	@echo "==> ruff check --fix"
	@$(BIN)/ruff check --fix .

bench: $(STAMP) ## run the benchmarks (classifier, worst-case messages, alert delivery, school model)
	@echo "==> bench/classify.py"
	@$(BIN)/python bench/classify.py
	@echo "==> bench/worst_case.py"
	@$(BIN)/python bench/worst_case.py
	@echo "==> bench/alerts.py"
	@$(BIN)/python bench/alerts.py
	@echo "==> bench/school_model.py"
	@$(BIN)/python bench/school_model.py

lock: ## regenerate requirements/*.lock (LOCK_ARGS=--upgrade to upgrade)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: '$(PYTHON)' not found" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
		echo "error: lock files are compiled for Python 3.11 but '$(PYTHON)' is $$($(PYTHON) -V 2>&1)." >&2; \
		echo "       Run: make lock PYTHON=/path/to/python3.11" >&2; \
		exit 1; }
	@if ! $(TOOLS_VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
		echo "==> creating pip-tools environment in $(TOOLS_VENV)"; \
		rm -rf $(TOOLS_VENV); \
		$(PYTHON) -m venv $(TOOLS_VENV) || { rm -rf $(TOOLS_VENV); exit 1; }; \
	fi
	@echo "==> installing $(PIP_TOOLS_REQS) into $(TOOLS_VENV)"
	@$(TOOLS_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS_REQS) $(QUIET_PIP)
	@mkdir -p requirements
	@echo "==> compiling $(MAIN_LOCK) (runtime dependencies)"
	@CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS_VENV)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) \
		--output-file $(MAIN_LOCK) pyproject.toml $(QUIET_PIP)
	@echo "==> compiling $(DEV_LOCK) (runtime + dev extra, constrained by $(MAIN_LOCK))"
	@CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS_VENV)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) \
		--extra dev --constraint $(MAIN_LOCK) --output-file $(DEV_LOCK) pyproject.toml $(QUIET_PIP)
	@echo "==> done; review with: git diff requirements/"

clean: ## remove .venv, .venv-tools, caches and var/
	@echo "==> removing $(VENV) $(TOOLS_VENV) var/ and caches"
	@rm -rf $(VENV) $(TOOLS_VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis \
		test-artifacts build dist
	@find . -path ./.git -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
	@find . -path ./.git -prune -o -name '*.py[co]' -type f -exec rm -f {} +
