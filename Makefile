# vaegan: the two set-up commands are `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch that lies on this machine's disk (docker/constraints.txt's pin; tests/docker holds them
# equal); a bare `torch` pulls a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0
DEMO_RUN ?= runs/demo
DEMO_EPOCHS ?= 4
# The default recipe (trainer/recipes.py) in bf16 autocast: 500 steps of batch 64, about 2 minutes on
# 2 CPU cores. With the fitted prior /sample serves as clean digits at 500 steps as at 2,500
# (docs/benchmarks.md, "Longer training": the steps curve of the demo recipe).
DEMO_FLAGS ?= --recipe default --amp
MODELS_DIR ?= models
# make test's pytest workers (pytest-xdist). Much of the suite waits on live servers, browsers and
# subprocesses, so two workers on this project's 2-core machines take about 135 s where one takes 220 s
# (docs/testing.md); more workers than cores were no faster.
TEST_WORKERS ?= 2

.PHONY: demo test lint format typecheck pytest soak bench bench-quick screenshots clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q $(TORCH_CPU)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q $(TORCH_CPU)
	$(PY) -m pip install -q -e '.[train,serve]'
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/vaegan-train --preset mnist32 --dataset embedded-mnist --epochs $(DEMO_EPOCHS) $(DEMO_FLAGS) \
		--out $(DEMO_RUN) --export-to $(MODELS_DIR) --name mnist
	@echo "serving on http://127.0.0.1:8000/ : open it for the playground (Ctrl-C stops)"
	VAEGAN_MODELS_DIR=$(MODELS_DIR) VAEGAN_MODEL_NAME=mnist $(VENV)/bin/vaegan-serve --host 127.0.0.1 --port 8000

test: $(VENV)/.dev-installed lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy model_core service

pytest: $(VENV)/.dev-installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The soak tests: make test's checks held longer (a minute of sustained load); not part of make test.
soak: $(VENV)/.dev-installed
	$(PY) -m pytest -q -m soak

bench: $(VENV)/.dev-installed
	for m in runtime serve train quality; do $(PY) -m bench.$$m || exit 1; done

bench-quick: $(VENV)/.dev-installed
	for m in runtime serve train quality; do $(PY) -m bench.$$m --quick || exit 1; done

# The README's picture of the playground: both pretrained bundles served, the page driven in headless Chromium.
screenshots: $(VENV)/.dev-installed
	$(PY) -m tests.browser.screenshot docs/img/playground.png

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache build *.egg-info
