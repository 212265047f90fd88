# Hushdrop: `make serve` installs everything into the repo and starts the relay + site;
# `make test` runs every test (unit, integration, browser). Both are safe to run repeatedly.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SITE   := build/site
# Root needs no sudo (CI, containers); everyone else installs the browsers through sudo.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The browser tests' Debian packages, each as package:program-it-provides. Chromium is driven by
# Playwright, Firefox over WebDriver BiDi, WebKitGTK's MiniBrowser through WebKitWebDriver on an
# Xvfb display.

.PHONY: setup site serve test test-unit test-integration test-browser test-tools browsers chromium lint \
	format bench bench-load bench-cluster cluster-tools lock clean deploy-tools wheel

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

site: setup
	$(BIN)/python web/build_site.py --out $(SITE)

serve: site
	$(BIN)/hushdrop serve --site-dir $(SITE)

# The installable package, with the built site inside: dist/hushdrop-<version>-py3-none-any.whl.
wheel: site
	$(BIN)/python -m build --outdir dist

# What the tests need from Debian (browsers, never a downloaded one; the deployment and cluster
# servers, started by the tests themselves): apt installs only what is missing. RUNLEVEL=1 keeps
# the packages' own services from starting.
TEST_PACKAGES := chromium firefox-esr webkit2gtk-driver xvfb caddy nginx openssl redis-server \
	haproxy zsh fish
test-tools:
	@missing=""; for package in $(TEST_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "ok installed" || \
		missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian's$$missing for the tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
			apt-get install -y -qq $$missing; fi

browsers chromium cluster-tools deploy-tools: test-tools  # former names

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint test-tools
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: setup
	$(BIN)/pytest -q tests/integration

test-browser: setup test-tools
	$(BIN)/pytest -q playwright

bench: setup
	$(BIN)/python bench/transfer.py

bench-load: setup
	$(BIN)/python bench/load.py

bench-cluster: setup test-tools
	$(BIN)/python bench/cluster.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .ruff_cache
