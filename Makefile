# Two commands do everything on a fresh clone:
#   make demo   set up .venv and run the main job (convlens compare dnn cnn)
#   make test   set up .venv with the test tools and run lint + the test suite
#   make serve  the lab in a browser at http://127.0.0.1:8000/
#
# DATA=DIR points the demo at a folder with the Fashion-MNIST files; without it convlens
# looks in $CONVLENS_DATA, its cache, /usr/share/datasets/fashion-mnist, then downloads,
# and with no network falls back to the sample it ships with (and says so).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?=
EPOCHS ?= 5
# The tests' real-data smoke run reads the shared copy beside the project when present.
CONVLENS_TEST_DATA ?= $(wildcard $(abspath ../shared/datasets/fashion-mnist))
export CONVLENS_TEST_DATA

.PHONY: demo serve test lint format clean

demo: $(VENV)/.installed
	$(BIN)/convlens compare dnn cnn --epochs $(EPOCHS) $(if $(DATA),--data-dir $(DATA))

serve: $(VENV)/.installed-test
	$(BIN)/convlens serve $(if $(DATA),--data-dir $(DATA))

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests scripts bench
	$(BIN)/ruff check --fix src tests scripts bench

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	touch $@

# torch==2.13.0 is pinned in pyproject.toml: the CPU wheel these machines carry.
$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
