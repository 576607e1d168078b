# Two commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MIN_VENV := .venv-min
MIN_STAMP := $(MIN_VENV)/.installed

.PHONY: demo test lint unit client-min tools bench clean example

# Debian's python3.11 needs the python3-venv package for `-m venv`; install it when we may.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; fi; \
		$(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/runbook demo

# Real components the integration tests use: Alertmanager, Prometheus and PostgreSQL (Debian packages),
# kubectl and Chromium (run page).
tools:
	@if ! command -v prometheus >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing prometheus"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	fi
	@if ! command -v prometheus-alertmanager >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing prometheus-alertmanager"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; \
	fi
	@if { ! ls /usr/lib/postgresql/*/bin/initdb || ! test -x /usr/sbin/pgbouncer; } >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing postgresql and pgbouncer"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql pgbouncer >/dev/null; \
	fi
	@if ! command -v kubectl >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing kubectl (kubernetes-client)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (headless browser for the run page tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check engine integrations tests bench examples
	$(BIN)/mypy --strict engine
	$(BIN)/mypy integrations
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

# A second, small venv with the oldest versions pyproject allows (tests/min-versions.txt), running the client tests.
$(MIN_STAMP): tests/min-versions.txt | $(BIN)/python
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install --quiet -r tests/min-versions.txt
	touch $(MIN_STAMP)

client-min: $(MIN_STAMP)
	PYTHONPATH=. $(MIN_VENV)/bin/pytest -q -p no:cacheprovider tests/integrations/kubernetes/test_k8s_client.py

test: $(STAMP) tools lint example
	$(BIN)/runbook validate runbooks/
	$(BIN)/pytest
	$(MAKE) client-min
	$(BIN)/runbook test runbooks/

# The example plug-in package: installed (its entry point is how plug-ins register) and its own tests run.
example: $(STAMP)
	$(BIN)/pip install --quiet --no-deps -e examples/runbook-actions-example
	$(BIN)/pytest examples/runbook-actions-example/tests

bench: $(STAMP) tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(MIN_VENV) .runbook .pytest_cache .mypy_cache .ruff_cache
