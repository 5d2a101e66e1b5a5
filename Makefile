# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Everything a run writes lives under the state folder: PIPELINE_STATE_DIR, else .state/.
STATE := $(abspath $(or $(PIPELINE_STATE_DIR),$(CURDIR)/.state))
export DAGSTER_HOME := $(STATE)/dagster_home

.PHONY: install demo materialize simulate summary rollback test test-soak ui docs chromium bench clean

# The pipeline's own commands see the same state folder as the Dagster home above.
materialize simulate summary rollback ui docs: export PIPELINE_STATE_DIR := $(STATE)

# Live days the demo runs after the history, and days `make simulate` adds.
LIVE_DAYS ?= 7
DAYS ?= 1

install: $(VENV)/.installed

# uv is bootstrapped into the project venv, then installs exactly what uv.lock pins. Bytecode
# is compiled once here (about 35 s): where PYTHONDONTWRITEBYTECODE is set, as on these
# machines, every process would otherwise compile each library it imports again (importing
# GX, Evidently, MLflow and Dagster took 26 s instead of 13 s), and the loop starts dozens.
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv sync --frozen --compile-bytecode --python $(BIN)/python
	touch $@

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp orchestration/dagster.yaml $@

demo: install materialize summary

# A new world: the history (initial export, warehouse, first model), then LIVE_DAYS days of
# the loop, the scripted shift included. Runs are recorded in the Dagster instance.
materialize: install $(DAGSTER_HOME)/dagster.yaml
	time $(BIN)/python -m orchestration.loop demo --live-days $(LIVE_DAYS)

# DAYS more days of the loop on the same state.
simulate: install $(DAGSTER_HOME)/dagster.yaml
	time $(BIN)/python -m orchestration.loop simulate --days $(DAYS)
	$(BIN)/python -m orchestration.summary

summary:
	$(BIN)/python -m orchestration.summary

# Moves a model's champion back: make rollback MODEL=purchase VERSION=1 REASON="why"
rollback: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m orchestration.rollback --model "$(MODEL)" --to-version "$(VERSION)" --reason "$(REASON)"

# Two workers, one test file each (files share module fixtures such as the end-to-end run):
# about 6 min on 2 cores when the machine is quiet (337 s), the slowest files first (tests/conftest.py).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Kills a run during dbt, re-runs it and compares the marts with a fresh run (about 4 min).
test-soak: install
	$(BIN)/python -m pytest -m soak tests/test_runs_survive.py

# The Dagster UI (dg dev) and the MLflow UI as one process group: Ctrl-C, or either server
# failing, stops both (orchestration/ui.py). Schedules and sensors stay stopped unless
# PIPELINE_AUTOMATION=running (a deployment).
ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m orchestration.ui

# dbt docs (one static page, opens from disk) into the state's dbt/docs, and the reports
# index, reports/index.html: every report a run produced, the dbt docs, links to the UIs.
docs: install
	$(BIN)/python -m orchestration.reports

# Headless Chromium (the Debian package) for the browser test of the reports (tests/test_reports_render.py);
# without it that test is skipped and says how to install it. Needs root (or sudo).
chromium:
	command -v chromium >/dev/null || apt-get install -y chromium || sudo apt-get install -y chromium

bench: install
	$(BIN)/python -m pytest -m bench -s tests/bench

# The state folder, and dbt's parse artefacts in the project (made again on the next load).
clean:
	rm -rf $(STATE) dbt_project/target dbt_project/logs
