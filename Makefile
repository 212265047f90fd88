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
BROWSER_PACKAGES := chromium:chromium firefox-esr:firefox-esr webkit2gtk-driver:WebKitWebDriver \
	xvfb:Xvfb

.PHONY: setup site serve test test-unit test-integration test-browser browsers chromium lint \
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

# Browser tests use Debian's browsers; never a downloaded one. Installs only what is missing.
browsers:
	@missing=""; for entry in $(BROWSER_PACKAGES); do \
		command -v "$${entry#*:}" >/dev/null 2>&1 || missing="$$missing $${entry%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian's$$missing for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

chromium: browsers  # its former name

# The tests of several relay nodes run Debian's Redis and HAProxy (as their own processes).
CLUSTER_PACKAGES := redis-server:redis-server haproxy:haproxy
cluster-tools:
	@missing=""; for entry in $(CLUSTER_PACKAGES); do \
		command -v "$${entry#*:}" >/dev/null 2>&1 || missing="$$missing $${entry%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian's$$missing for the relay cluster tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# The deployment tests put Debian's caddy and nginx in front of a relay; installs only what is
# missing. RUNLEVEL=1 keeps the packages from starting their system services: tests run their own.
DEPLOY_PACKAGES := caddy:caddy nginx:nginx openssl:openssl
deploy-tools:
	@missing=""; for entry in $(DEPLOY_PACKAGES); do \
		command -v "$${entry#*:}" >/dev/null 2>&1 || missing="$$missing $${entry%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian's$$missing for the deployment tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
			apt-get install -y -qq --no-install-recommends $$missing; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint browsers deploy-tools cluster-tools
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: setup
	$(BIN)/pytest -q tests/integration

test-browser: setup browsers
	$(BIN)/pytest -q playwright

bench: setup
	$(BIN)/python bench/transfer.py

bench-load: setup
	$(BIN)/python bench/load.py

bench-cluster: setup cluster-tools
	$(BIN)/python bench/cluster.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .ruff_cache
