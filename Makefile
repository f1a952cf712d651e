# The two commands a newcomer needs:  make demo  and  make test  (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APP_STAMP := $(VENV)/.stamp-app
DEV_STAMP := $(VENV)/.stamp-dev
NPM_STAMP := node_modules/.stamp-vendor
TEST_ENV := DJANGO_SETTINGS_MODULE=config.settings.test
# manage.py and the WSGI entry point default to production settings; the demo asks for development.
DEV_ENV := DJANGO_SETTINGS_MODULE=config.settings.dev

.PHONY: demo test lint messages system-deps system-deps-test bench seed-scale mutation

demo: system-deps $(APP_STAMP) $(NPM_STAMP) messages
	$(DEV_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEV_ENV) $(PY) manage.py seed_demo
	scripts/run-demo.sh

test: system-deps-test $(DEV_STAMP) $(NPM_STAMP) messages lint
	$(TEST_ENV) $(PY) manage.py check
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	@echo "=== Test suite on SQLite ==="
	$(VENV)/bin/pytest
	@echo "=== Test suite on PostgreSQL ==="
	scripts/with-postgres.sh $(VENV)/bin/pytest
	@echo "=== Scale profile: PostgreSQL, Redis, RQ worker, object storage, gunicorn behind nginx ==="
	scripts/with-scale-stack.sh $(VENV)/bin/pytest -m scale tests/scale

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

system-deps:
	scripts/system-deps.sh demo

system-deps-test:
	scripts/system-deps.sh test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(APP_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(APP_STAMP)
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

# hls.js, qrcode-generator and jsQR (the site terminal draws and reads QR codes offline) from the
# npm registry, at the versions package-lock.json pins; served as static files.
# Only the build the player loads (and its source map) becomes a static file.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p node_modules/.vendor/hls
	cp node_modules/hls.js/dist/hls.min.js node_modules/hls.js/dist/hls.min.js.map node_modules/.vendor/hls/
	mkdir -p node_modules/.vendor/qrcode node_modules/.vendor/jsqr
	cp node_modules/qrcode-generator/dist/qrcode.js node_modules/.vendor/qrcode/
	cp node_modules/jsqr/dist/jsQR.js node_modules/.vendor/jsqr/
	touch $@

messages: $(APP_STAMP)
	$(DEV_ENV) $(PY) manage.py compilemessages --ignore=.venv --ignore=node_modules --ignore=mutants -v 0

seed-scale: system-deps $(APP_STAMP)
	$(DEV_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEV_ENV) $(PY) manage.py seed_demo --members 300000

# Mutation testing of the rule modules ([tool.mutmut] in pyproject.toml); not part of `make test`.
# One worker: the machine is shared. Narrow it with mutant names, e.g.
#   make mutation MUTANTS='members.access.*'
# then `.venv/bin/mutmut results` lists the survivors and `.venv/bin/mutmut show <name>` one diff.
MUTANTS ?=
MUTATION_DB := $(CURDIR)/mutants/var/mutation-test.sqlite3
mutation: $(DEV_STAMP) messages
	mkdir -p mutants/var
	rm -f $(MUTATION_DB) $(MUTATION_DB)-wal $(MUTATION_DB)-shm
	LUNXUN_TEST_SQLITE=$(MUTATION_DB) $(VENV)/bin/mutmut run --max-children 1 $(MUTANTS)

bench: $(DEV_STAMP) $(NPM_STAMP)
	scripts/system-deps.sh bench
	$(PY) bench/run.py
