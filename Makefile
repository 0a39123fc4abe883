# Two commands do everything: `make report` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup report test bench screenshots clean-venv

setup: $(STAMP)

# Reinstalls only when pyproject.toml changes. musicnn goes in with --no-deps:
# its metadata pins numpy<1.17 and TensorFlow, neither of which mvnb needs.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	$(PY) -m pip install -qq --no-deps musicnn==0.1.0
	touch $@

report: setup
	$(PY) -m mvnb report --profile default

# One formatter and linter (ruff, pinned in the dev extra; settings in pyproject.toml), then the tests.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

# Each benchmark prints its measurements and ratios measured side by side in the same run.
bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The browser tests on the quick report, saving their screenshots into figures/ for the README.
screenshots: setup
	MVNB_SCREENSHOTS=$(CURDIR)/figures $(PY) -m pytest -q -m browser

clean-venv:
	rm -rf $(VENV)
