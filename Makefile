# The two commands of the README:
#   make reproduce   every notebook in the `quick` profile on the CPU → reports/index.html
#   make test        the test suite (notebooks executed in the `smoke` profile)
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
STAMP := $(VENV)/.installed

.PHONY: reproduce test env clean-reports

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/acsl reproduce --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-reports:
	rm -rf reports
