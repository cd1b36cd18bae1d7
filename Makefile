# Composer: every target works on a fresh clone; `make test` and `make search` install first if needed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export JAX_PLATFORMS ?= cpu
export XLA_PYTHON_CLIENT_PREALLOCATE ?= false

.PHONY: install test test-slow lint search bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of PyTorch (for optuna.GPSampler and the throughput benchmark), pinned so pip
	# takes it rather than a multi-GB CUDA build.
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(BIN)/python -m pip install -q -e '.[dev,ray,gp]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=600 tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=3600 -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check primitives composer scaling search experiments tests

search: $(STAMP)
	$(BIN)/composer search --budget 200 --scale 350M

bench: $(STAMP)
	$(BIN)/python experiments/bench/train_throughput.py
	$(BIN)/python experiments/bench/kernels.py
	$(BIN)/python experiments/bench/evaluator.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
