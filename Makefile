# The two commands a new machine needs: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
INDEX  ?= var/index
CORPUS ?= corpus
HOST   ?= 127.0.0.1
PORT   ?= 5000

export KB_INDEX_DIR ?= $(INDEX)
export KB_BIND ?= $(HOST):$(PORT)

.PHONY: run serve dev test index install clean help

help:
	@echo "make run    - set up, build the index if missing or stale, serve with gunicorn on http://$(KB_BIND) (foreground)"
	@echo "make test   - set up and run the test suite"
	@echo "make dev    - the same, served by Flask's development server on http://$(HOST):$(PORT) (no debugger)"
	@echo "make serve  - the same as make run (kb-serve: gunicorn with search_app/gunicorn_conf.py)"
	@echo "make index  - build or refresh the index only"

# The venv is rebuilt when a requirements file changes; the stamp records a finished install.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements.txt -r requirements-dev.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# `indexer build` is a no-op when the live index already matches the corpus and settings.
index: install
	$(PY) -m indexer build --corpus $(CORPUS) --index $(INDEX)

# gunicorn in the foreground (search_app/gunicorn_conf.py: KB_WORKERS, KB_THREADS, ...); it prints
# one "serving http://... (N workers)" line once it listens. Ctrl-C stops it.
run: index
	@$(VENV)/bin/kb-serve

serve: index
	@$(VENV)/bin/kb-serve

# Flask's development server; FLASK_DEBUG is refused as everywhere (search_app/security.py).
dev: index
	$(PY) -m flask --app 'search_app:create_app({"WARM_UP": "background"})' run --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache
