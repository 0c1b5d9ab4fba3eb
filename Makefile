# The two commands in the README are the contract: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODELS_DIR    ?= models
DEFAULT_MODEL ?= pima-diabetes
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install install-dev train run test bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make run    set up, train the default model if none exists, serve it with gunicorn on :8000"
	@echo "make test   set up and run every test"
	@echo "make train  train the default model again (a new version)"
	@echo "make bench  benchmark the service with wrk (writes bench/RESULTS.md)"
	@echo "make install / install-dev   create .venv with the runtime / test dependencies"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files make `install` a no-op until a requirements file changes.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PIP) install -r requirements-dev.txt
	@touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

train: install
	$(BIN)/python train.py --models-dir $(MODELS_DIR)

run: install
	@ls $(MODELS_DIR)/$(DEFAULT_MODEL)/*/metadata.json >/dev/null 2>&1 || $(MAKE) --no-print-directory train
	MODELS_DIR=$(MODELS_DIR) DEFAULT_MODEL=$(DEFAULT_MODEL) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

bench: install-dev
	$(BIN)/python bench/run.py
