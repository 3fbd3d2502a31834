# `make test` and `make repro` set up .venv by themselves on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lock lab test repro bench html chromium clean-venv

# The venv holds exactly requirements.lock (every package, pinned with hashes; pip among them), then this
# project itself, editable, with no further resolution. The lock is for CPython 3.11 on Linux x86_64, where
# torch 2.14.1 is PyPI's manylinux wheel (CUDA runtime packages included; it runs on the CPU too).
setup: $(STAMP) chromium

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Refresh requirements.lock from pyproject.toml: pins already in the lock are kept while they still fit
# (pip-compile's rule); `make lock UPGRADE=1` moves every package to its newest allowed release.
LOCK_FLAGS := --quiet --extra dev --all-build-deps --allow-unsafe --strip-extras --generate-hashes \
	--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock: $(STAMP)
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --output-file requirements.lock pyproject.toml

# JupyterLab (locked in the dev extras) rooted at the repository and opened on notebooks/ (the sources; the
# executed ones are in results/notebooks). LAB_ARGS passes more options, e.g. LAB_ARGS='--no-browser --allow-root'.
lab: $(STAMP)
	env -u MPLBACKEND $(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

# Headless Chromium and its WebDriver, Debian's packages (the browser test of the HTML pages opens them with
# selenium): installed with apt-get when either is missing, as root or through sudo. Elsewhere, install a
# Chromium and its chromedriver by hand and name them: `make test CHROMIUM=... CHROMEDRIVER=...`.
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
APT_GET      := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
chromium:
	@if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make chromium: $(CHROMIUM) or $(CHROMEDRIVER) is missing and there is no apt-get to install Debian's" \
			"chromium and chromium-driver; install Chromium and its chromedriver by hand and pass" \
			"CHROMIUM=/path/to/chromium CHROMEDRIVER=/path/to/chromedriver" >&2; exit 1; fi; \
	echo "make chromium: installing Debian's chromium and chromium-driver (apt-get)"; \
	$(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

# Every test, the smoke pipeline and nbval included (tests/test_pipeline_smoke.py: `dvc repro` on profile
# smoke in a copy of the repo, then nbval on its executed notebooks, then its HTML in headless Chromium).
# ROG_BROWSER=require: the browser test fails, instead of skipping, when Chromium is missing.
test: $(STAMP) chromium
	env -u MPLBACKEND DVC_NO_ANALYTICS=1 ROG_BROWSER=require ROG_CHROMIUM=$(CHROMIUM) \
		ROG_CHROMEDRIVER=$(CHROMEDRIVER) $(PY) -m pytest -q tests

# Every executed notebook (results/notebooks, subfolders included) as static HTML with its figures embedded,
# plus an index page: open $(HTML_DIR)/index.html in a browser. Generated, not committed (out/ is ignored).
HTML_DIR ?= out/html
html: $(STAMP)
	$(PY) -m rog report html --out $(HTML_DIR)

bench: $(STAMP)
	$(PY) benchmarks/gap_loss.py

# The whole pipeline on params.yaml's profile (default): the raw snapshot pulled offline from the
# in-repo remote, then `dvc repro` with JOBS experiments side by side (rog.pipeline.parallel; it ends
# with a plain `dvc repro`), then README.md's headline table from results/. papermill, dvc and python
# of the venv first on PATH; no MPLBACKEND, which would drop the figures from the executed notebooks.
JOBS      ?= 2
REPRO_ENV := env -u MPLBACKEND PATH="$(abspath $(VENV))/bin:$$PATH" DVC_NO_ANALYTICS=1
repro: $(STAMP)
	$(PY) -m rog report pipeline --check
	$(REPRO_ENV) $(PY) -m dvc pull data.dvc
	$(REPRO_ENV) $(PY) -m rog.pipeline.parallel -j $(JOBS)
	$(PY) -m rog.report.readme

# A subset of the registry (params.yaml `subsets`) in a copy of the repo (COPY_DIR, default: a new
# temporary folder): smoke (CI, minutes), quick (Table 1's headline rows and Figure 5, default profile),
# ranking (Table 2's ranking losses alone, Figure 4, Table 4's GAP design; default profile), open_questions
# (GAP alone and EQLv2 at 1x and 2x: the overview's open questions; default profile, about 2 h).
.PHONY: smoke quick ranking open_questions
smoke quick ranking open_questions: $(STAMP)
	$(REPRO_ENV) $(PY) -m rog.pipeline.smoke --subset $@ -j $(JOBS) $${COPY_DIR:-$$(mktemp -d)/rog}

# What a fresh clone lacks before DVC can judge it: the raw inputs of LT-Glyphs (corpus text, fonts),
# pulled offline from the in-repo DVC remote (dvc-remote/), the dataset stage's output, rendered from
# them (~30 s), and, when the profile starts from a pretrained detector, the pretrain stage's output
# (`rog pretrain`: about 25 min on one thread for the default profile); both byte-identical to what
# dvc.lock records. After it, `dvc status` lists only the stages whose code, params or inputs really
# changed, and `dvc repro --dry` runs.
.PHONY: data
data: $(STAMP)
	$(REPRO_ENV) $(PY) -m dvc pull data.dvc
	$(REPRO_ENV) $(PY) -m dvc repro dataset
	if grep -q '^  pretrain:' dvc.yaml; then $(REPRO_ENV) $(PY) -m dvc repro pretrain; fi

clean-venv:
	rm -rf $(VENV)
