# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs pytest install test-deps clean bench bench-peers peers-env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/insitu demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy src

# The HTML report tests open reports in a headless Chromium (they fail, never skip, without it).
# Debian's package; installed here so that `make test` alone passes on a fresh machine.
CHROMIUM := /usr/bin/chromium

test-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" != 0 ] && ! command -v sudo > /dev/null; then \
			echo "error: the report tests need $(CHROMIUM); install Debian's chromium package as root" >&2; \
			exit 2; \
		fi; \
		echo "installing Debian's chromium for the report tests (once)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium > /dev/null; \
	fi

# The API reference: HTML from the public packages' docstrings, into build/api/. Any warning
# pdoc prints (an unresolvable annotation, an `__all__` name that does not exist, a module that
# fails to import, ...) fails the target. PDOC_ALLOW_EXEC: h5py runs `uname -p` on import, which
# pdoc would otherwise suppress (and warn about). The one ignored warning is pdoc not finding
# where torch.Tensor declares its private `_is_param` (a subclass, TileParameter, inherits it).
DOC_MODULES := insitu.devices insitu.hardware insitu.energy insitu.data insitu.algorithms \
	insitu.nn insitu.interop insitu.experiments insitu.errors

docs: $(STAMP)
	@rm -rf build/api && mkdir -p build
	@PDOC_ALLOW_EXEC=1 $(BIN)/python \
		-W 'ignore:Cannot determine where insitu.nn.TileParameter._is_param is taken from' \
		-m pdoc -o build/api $(DOC_MODULES) 2> build/api-warnings.txt; \
	status=$$?; cat build/api-warnings.txt >&2; \
	if [ $$status -ne 0 ] || [ -s build/api-warnings.txt ]; then \
		echo "error: the API reference has warnings (above); fix the docstrings" >&2; exit 1; \
	fi
	@echo "API reference: build/api/index.html"

pytest: $(STAMP) test-deps
	$(BIN)/pytest -q

test: lint typecheck docs pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/crossbar_throughput.py

# The peers (aihwkit, snnTorch) live in their own environment; see benchmarks/peers/.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed

$(PEERS_STAMP): benchmarks/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q -r benchmarks/peers/requirements.txt
	$(PEERS)/bin/pip install -q --no-deps aihwkit==1.1.0 snntorch==1.0.0
	touch $(PEERS_STAMP)

peers-env: $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/vs_peers.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
