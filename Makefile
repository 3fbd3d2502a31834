# `make test` and `make repro` set up .venv by themselves on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test repro bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/gap_loss.py

repro: $(STAMP)
	@echo "make repro: the DVC pipeline (dvc.yaml) does not exist yet; see issue 6." >&2
	@exit 2

# The raw inputs of LT-Glyphs (corpus text, fonts): pulled offline from the in-repo DVC remote (dvc-remote/).
.PHONY: data
data: $(STAMP)
	DVC_NO_ANALYTICS=1 $(PY) -m dvc pull data.dvc

clean-venv:
	rm -rf $(VENV)
