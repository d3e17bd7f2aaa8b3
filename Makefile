# Two commands matter (README): `make up` starts the whole system locally, `make test` runs every test.
# Both install what is missing first; the install is redone only when pyproject.toml or package-lock.json change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Tools installed into the venv (weed, hadolint, protoc plugins) must be found by the tests and the stack.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PY_STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
WEB_STAMP := clients/web/node_modules/.installed-$(shell sha1sum clients/web/package-lock.json | cut -c1-12)

.PHONY: install up down status test test-python test-web lint genproto web chromium

install: $(PY_STAMP) $(WEB_STAMP) chromium

# The browser for the game's end-to-end test: Debian's chromium driven by playwright-core (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  $$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get install -y -qq chromium; }

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# helm-sdkpy declares Python >= 3.12 but its bundled Helm engine works on 3.11: tests/deploy render the chart with it on 3.11.
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python helm-sdkpy==0.1.32
	rm -f $(VENV)/.installed-* && touch $@

$(WEB_STAMP): clients/web/package-lock.json
	cd clients/web && npm ci --no-audit --no-fund
	touch $@

# The built game, served by `make up` (and type-checked by the build).
web: install
	cd clients/web && npm run build

up: install web
	$(VENV)/bin/scale-diffusion up

down:
	$(VENV)/bin/scale-diffusion down

status:
	$(VENV)/bin/scale-diffusion status

genproto: install
	$(PY) tools/genproto.py

test-web: install
	cd clients/web && npm test

test-python: install
	$(PY) -m pytest

# ruff (lint, import order) and mypy (types; pyproject.toml lists the modules not yet clean).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Lint and types, then web tests and build, so pytest's summary is the closing line (the stack tests serve the game).
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cd clients/web && npm test
	cd clients/web && npm run build
	$(PY) -m pytest
