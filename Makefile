# Two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

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

demo: $(STAMP)
	$(BIN)/billcast demo --out var/demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

# Regenerate the golden frames deliberately after an intended visual change.
golden: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests/test_golden.py --regen-golden

clean:
	rm -rf $(VENV) var
