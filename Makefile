# iqa-bench developer entry points. Uses the active virtualenv ($VIRTUAL_ENV) if there is one,
# otherwise creates and uses ./.venv.
PYTHON ?= python3
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.iqa-bench-installed
DATASET ?= equal-mse
METRICS ?= all
OUT ?= runs/$(DATASET)

# Offline trunk weights and reference values beside the checkout, when present (CI sets them too).
IQA_BENCH_WEIGHTS ?= $(wildcard $(abspath $(CURDIR)/../shared/weights))
IQA_BENCH_REFERENCE ?= $(wildcard $(abspath $(CURDIR)/../shared/reference))
export IQA_BENCH_WEIGHTS IQA_BENCH_REFERENCE

.PHONY: install test test-fast lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The inner loop: everything but the tests marked slow (docstring examples included).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/iqa-bench bench --dataset $(DATASET) --metrics $(METRICS) --out $(OUT)

clean:
	rm -rf runs .pytest_cache build dist
