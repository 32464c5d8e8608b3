# simkit developer tasks. Fresh machine:  make test   (or: make demo)
# The interpreter comes from scripts/find-python (Python >= 3.12);
# override it with SIMKIT_PYTHON=/path/to/python3.12.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
STAMP       := $(VENV)/.installed
VPY         := $(VENV)/bin/python
FIND_PYTHON := bash scripts/find-python
JOBS        ?= 2
PYTEST_ARGS ?=
LINT_PATHS  := $(wildcard simkit tests benchmarks notebooks docs/conf.py)
# Every optional extra of pyproject.toml (dev, app, dask, ...): .venv and the lock hold them all.
EXTRAS      := $(shell sed -n '/^\[project\.optional-dependencies\]/,/^\[/s/^\([A-Za-z0-9_-]*\) *= *\[.*/\1/p' \
                 pyproject.toml | paste -sd, -)
DEMO        ?= ridehailing_duopoly
APP_PORT    ?= 8866
APP_USERS   ?= 5000
# The app's kernels: one kept executed ahead of the next visitor (pre-heated), at most 4
# running at once (simkit.widgets.serve: a visitor beyond gets a 'busy, try again' page),
# and a kernel idle for 10 minutes (its page closed) shut down. tests/widgets/test_browser.py
# serves the app with the same options.
APP_VOILA   := --preheat_kernel=True --pool_size=1 \
               --VoilaConfiguration.multi_kernel_manager_class=simkit.widgets.serve.AppKernelManager \
               --AppKernelManager.max_kernels=4 \
               --MappingKernelManager.cull_idle_timeout=600 \
               --MappingKernelManager.cull_interval=60
CHROMIUM    ?= /usr/bin/chromium

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help venv demo test test-fast lint docs bench dashboards lab app chromium lock clean

help: ## List the targets
	@echo "simkit make targets:"
	@grep -E '^[a-zA-Z_. -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([^:]+):.*## /\1\t/' \
		| awk -F'\t' '{ printf "  %-11s %s\n", $$1, $$2 }'
	@echo "Variables: PYTEST_ARGS='...' (extra pytest args), JOBS=$(JOBS) (pytest workers),"
	@echo "           SIMKIT_PYTHON=/path/to/python3.12 (interpreter for the venv)"

# --- virtualenv -------------------------------------------------------------
# The stamp is rebuilt only when pyproject.toml or requirements.lock change,
# so every target below is quick once the venv exists. A venv whose python is
# missing/broken/too old (e.g. its interpreter was removed) is recreated.
venv .venv: $(STAMP) ## Create .venv: simkit (editable) with every extra, pinned by requirements.lock

$(STAMP): pyproject.toml requirements.lock
	@py="$$($(FIND_PYTHON))" || exit 1; \
	if ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "Creating $(VENV) with $$py ($$("$$py" --version 2>&1))"; \
		rm -rf $(VENV) && "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(VPY) -m pip install --quiet --upgrade -c requirements.lock pip
	$(VPY) -m pip install -c requirements.lock -e ".[$(EXTRAS)]"
	@touch $@

# --- everyday tasks ---------------------------------------------------------
demo: $(STAMP) ## Run the ride-hailing duopoly scenario into results/
	$(VENV)/bin/simkit run $(DEMO) --out results/$(DEMO)

test: $(STAMP) chromium ## Run the whole test suite (pytest-xdist, JOBS workers)
	$(VPY) -m pytest -n $(JOBS) --dist worksteal $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the tests not marked slow
	$(VPY) -m pytest -n $(JOBS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + ruff format --check + mypy (files in pyproject's [tool.mypy])
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# Sphinx builds docs/ (Markdown, the notebooks unexecuted, the API reference from the
# docstrings, generated into docs/api/) with warnings as errors; the docs extra is in the venv.
docs: $(STAMP) ## Build the documentation site into docs/_build/html (warnings are errors)
	rm -rf docs/api
	$(VPY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "docs: file://$(CURDIR)/docs/_build/html/index.html"

bench: $(STAMP) ## Run the engine benchmark
	$(VPY) benchmarks/engine.py

dashboards: $(STAMP) ## Re-render docs/dashboards/ (the README's pictures) from the bundled scenarios
	@set -e; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	for spec in ridehailing_duopoly:: marketplace_subscription:: market_share_hypotheses:: \
	            market_share_hypotheses:price_cut: market_share_hypotheses:features: \
	            market_share_hypotheses:acquisition: bass_diffusion::--users=5000; do \
		name="$${spec%%:*}"; rest="$${spec#*:}"; variant="$${rest%%:*}"; extra="$${rest#*:}"; \
		png="docs/dashboards/$$name$${variant:+-$$variant}.png"; \
		$(VENV)/bin/simkit report "$$name" --runs 8 $${variant:+--variant $$variant} $$extra \
			--out "$$tmp/$$name$$variant" > /dev/null; \
		cp "$$tmp/$$name$$variant/dashboard.png" "$$png"; echo "wrote $$png"; \
	done

# --- notebooks and the explorer ---------------------------------------------
lab: $(STAMP) ## Open JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

app: $(STAMP) ## Serve the explorer (Voila) on 127.0.0.1, port APP_PORT, APP_USERS users
	@echo "simkit explorer: http://127.0.0.1:$(APP_PORT)/  (Ctrl-C stops it)"
	SIMKIT_APP_USERS=$(APP_USERS) $(VENV)/bin/voila notebooks/app.ipynb --no-browser \
		--port=$(APP_PORT) --Voila.ip=127.0.0.1 $(APP_VOILA)

# The browser test drives Debian's Chromium (Playwright's own download cannot work here).
# Installed with apt when missing; quiet when it is there.
chromium: ## Install Debian's chromium for the browser test, if missing
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium with apt-get (for tests/widgets/test_browser.py)"; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null \
			|| { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			     $$sudo apt-get install -y -qq chromium >/dev/null; } \
			|| echo "warning: could not install chromium; the browser test will be skipped"; \
	else \
		echo "note: no $(CHROMIUM) and no apt-get: install Chromium and set CHROMIUM=/path" \
		     "(SIMKIT_CHROMIUM for pytest); the browser test will be skipped"; \
	fi

# --- dependency lock ----------------------------------------------------------
# Resolve pyproject.toml's ranges (with every extra) from scratch in a throwaway
# venv (the existing lock is NOT used as a constraint) and freeze every installed
# distribution except simkit itself. Commit the result; .venv is rebuilt from it on
# next use. A new lock may move versions, and with them the golden numbers
# (tests/model/test_golden.py): check them before committing.
lock: ## Regenerate requirements.lock from pyproject.toml (needs the registry)
	@set -euo pipefail; \
	py="$$($(FIND_PYTHON))"; \
	tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	echo "Resolving pyproject.toml with $$py in $$tmp/venv"; \
	"$$py" -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e ".[$(EXTRAS)]"; \
	{ \
		echo "# requirements.lock: every package of simkit[$(EXTRAS)], pinned. Generated by 'make lock':"; \
		echo "# a fresh venv made with $$("$$tmp/venv/bin/python" -c 'import platform as p; print("Python", p.python_version(), "on", p.system(), p.machine())'),"; \
		echo "# then 'pip install -e .[$(EXTRAS)]' and 'pip freeze --all --exclude-editable' (simkit excluded)."; \
		echo "# Used as a constraints file by .venv and CI: pip install -c requirements.lock -e '.[$(EXTRAS)]'."; \
		echo "# pyproject.toml states compatible ranges; this file the exact versions. Do not edit by hand:"; \
		echo "# change pyproject.toml and run 'make lock'. Platform-specific extras (e.g. colorama on"; \
		echo "# Windows) are not listed and stay unpinned."; \
		"$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable --exclude simkit; \
	} > "$$tmp/requirements.lock"; \
	mv "$$tmp/requirements.lock" requirements.lock; \
	echo "Wrote requirements.lock ($$(grep -c '==' requirements.lock) pins)"

clean: ## Remove .venv, results/, caches and build artefacts
	rm -rf $(VENV) results build dist *.egg-info .pytest_cache .ruff_cache .hypothesis docs/_build docs/api
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
