# The two commands of the README:
#   make reproduce   every notebook in the `quick` profile on the CPU → reports/index.html
#   make test        the test suite (notebooks executed in the `smoke` profile)
#   make lab         JupyterLab in notebooks/ (relative paths in the notebooks resolve against the repository root)
# Each creates the virtual environment .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
STAMP := $(VENV)/.installed

.PHONY: reproduce test lab env clean-reports

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/acsl reproduce --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	cd notebooks && $(CURDIR)/$(BIN)/jupyter lab

clean-reports:
	rm -rf reports
