# The two commands in the README are the contract: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIDFILE ?= build/gunicorn.pid
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install install-dev train run test bench clean help reload pin rollback unpin
.DEFAULT_GOAL := help

help:
	@echo "make run    set up, train the default model if none exists, serve it with gunicorn on :8000"
	@echo "make test   set up and run every test"
	@echo "make train  train the default model again (a new version)"
	@echo "make bench  benchmark the service with wrk (writes bench/RESULTS.md)"
	@echo "make reload     load new model versions into the running server (HUP), dropping no request"
	@echo "make rollback   serve the previous version of the default model (pin it, then reload)"
	@echo "make pin VERSION=n / make unpin   pin the default model to a version / serve the newest again"
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

# Settings (MODELS_DIR, DEFAULT_MODEL, PORT, ...) come from the environment; app/config.py reads
# them for every command below, so none is repeated here.
train: install
	$(BIN)/python train.py

run: install
	$(BIN)/python train.py --if-missing
	@mkdir -p $(dir $(PIDFILE))
	PIDFILE=$(PIDFILE) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# gunicorn reloads on HUP: the master loads the models again, starts new workers and lets the
# old ones finish what they are answering.
reload:
	@test -s $(PIDFILE) || { echo "no server started by make run here ($(PIDFILE) is missing)"; exit 1; }
	kill -HUP $$(cat $(PIDFILE))

pin: install
	@test -n "$(VERSION)" || { echo "usage: make pin VERSION=<n>"; exit 2; }
	$(BIN)/python manage.py pin $(VERSION)
	@$(MAKE) --no-print-directory reload

rollback: install
	$(BIN)/python manage.py rollback
	@$(MAKE) --no-print-directory reload

unpin: install
	$(BIN)/python manage.py unpin
	@$(MAKE) --no-print-directory reload

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

bench: install-dev
	$(BIN)/python bench/run.py
