# Everything runs from the project's own virtualenv and node_modules: `make install`
# (a dependency of every target) creates them from requirements-dev.txt and package-lock.json.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
LAYER_PYTHON := blocks/handler_layer/python
PERSISTENT_STAGES := $(shell $(PYTHON) -c "import json; print(' '.join(json.load(open('cdk.json'))['context']['persistent_stages']))")
APP_NAME := $(shell $(PYTHON) -c "import json; print(json.load(open('cdk.json'))['context']['app_name'])")
# Without STAGE=NAME, the stage `cdk synth|deploy` takes without -c stage: cdk.json's
# default_stage (dev).
DEFAULT_STAGE := $(shell $(PYTHON) -c "import json; print(json.load(open('cdk.json'))['context']['default_stage'])")
STAGE ?= $(DEFAULT_STAGE)
# The stage's stack names without the stage (Alerts and each pattern folder's PascalCase
# name): teardown also deletes stacks of these names deployed before stacks were tagged.
STACK_NAMES = $(shell $(PYTHON) -c "import pathlib; from patterns import pattern_name_of; print(','.join(['Alerts'] + [pattern_name_of(p.parent.name) for p in sorted(pathlib.Path('patterns').glob('*/stack.py'))]))")
BOOTSTRAP_QUALIFIER := $(shell $(PYTHON) -c "import json; print(json.load(open('cdk.json'))['context'].get('@aws-cdk/core:bootstrapQualifier', 'hnb659fds'))")

# Node 22 from npm for jsii and the CDK CLI (the machine's Node may be end-of-life).
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
# Bytecode is written (some machines set PYTHONDONTWRITEBYTECODE): without it every pytest
# process and every localstage function environment compiled the app's and the tests'
# modules from source again. Lambda assets exclude __pycache__ (blocks.function).
unexport PYTHONDONTWRITEBYTECODE

# Ephemeral stages deploy without a prompt; persistent ones ask before IAM or security
# group changes. CI has no terminal to answer: its workflow for persistent stages passes
# REQUIRE_APPROVAL=never behind a GitHub environment's required reviewers instead.
EPHEMERAL := $(if $(filter $(STAGE),$(PERSISTENT_STAGES)),,yes)
APPROVAL := --require-approval $(or $(REQUIRE_APPROVAL),$(if $(EPHEMERAL),never,broadening))
# The stage's stacks, by path: they sit in a nested cdk.Stage named after the stage, and
# the CLI's --all selects only top-level stacks, of which the app has none. Synth needs
# them too: the CLI fails a synth on cdk-nag's findings only in the stacks it selected.
STAGE_STACKS = '$(STAGE)/*'
# TUNING and TRACING (see deploy) reach synth, diff and deploy: a diff of a stage deployed
# with them compares what deploy would deploy. destroy goes without: it deletes the
# stage's stacks whatever their settings.
STAGE_OPTIONS = $(if $(TUNING),-c tuning=$(TUNING)) $(if $(TRACING),-c tracing=$(TRACING))

.PHONY: install synth test test-suites lint unit infra e2e demo local bench api-docs deploy destroy teardown diff account ci-access clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: install
	$(CDK) synth $(STAGE_STACKS) -c stage=$(STAGE) $(STAGE_OPTIONS) --quiet
	@echo "synthesized stage $(STAGE) into cdk.out/assembly-$(STAGE)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# Each pattern's runtime/ folder is its own Lambda code root (its modules import each
	@# other top-level), so each is type-checked on its own, with the handler_kit layer
	@# (blocks/handler_layer/python, /opt/python on Lambda) on its path.
	@# Files are named one by one: pyproject.toml excludes these folders from the main run,
	@# and mypy applies that exclusion to a folder given on the command line too.
	MYPYPATH=$(LAYER_PYTHON) $(BIN)/mypy $(LAYER_PYTHON)/handler_kit/*.py
	for folder in $(patsubst %/stack.py,%/runtime,$(wildcard patterns/*/stack.py)); do \
		MYPYPATH=$$folder:$(LAYER_PYTHON) $(BIN)/mypy $$folder/*.py || exit 1; done

unit: install
	$(BIN)/pytest tests/unit

infra: install
	$(BIN)/pytest tests/infra

e2e: install
	$(BIN)/pytest tests/e2e

# The README's test command: lint and every test suite, side by side, each one's output
# printed whole when it ends. tests/conftest.py keeps the infra suite (one synth of two
# stages) and each e2e mode (stage `local`, synthesized through the CDK CLI as `make
# synth` does, cdk-nag included, and booted once per mode) on one worker each.
# Four workers on two cores: the e2e and localstage suites spend about a third of their
# time waiting for stage time (visibility timeouts, schedules, hops), which the other
# workers fill. Measured with make test on this 2-core machine: -n 2 234-238 s, -n 3
# 221 s, -n 4 193-199 s, -n 5 226 s (more processes, more CPU contention).
# The e2e suite runs twice, each time on a stage of its own (its own xdist group): once as
# localstage delivers by default, once with every event of every source delivered twice
# and every third DynamoDB transaction cancelled by a conflict (--delivery duplicate), so
# a handler that is not idempotent, or does not retry a conflict, fails here, not in AWS.
test: install
	$(MAKE) --no-print-directory -j 2 --output-sync=target lint test-suites

test-suites: install
	$(BIN)/pytest -n 4 --dist loadgroup --delivery once --delivery duplicate

# Each pattern's OpenAPI document (patterns/<name>/openapi.json), generated from its API
# handler's route declarations and pydantic models; the stacks build their API Gateway
# request models from these files, and tests/unit/test_api_contracts.py fails on a stale one.
api-docs: install
	$(BIN)/python -m blocks.openapi_docs

demo: install
	$(BIN)/python -m localstage demo

local: install
	@echo "API documents (OpenAPI 3.1; call the local URLs printed below instead of their servers):"
	@for document in $(wildcard patterns/*/openapi.json); do echo "  $$document"; done
	$(BIN)/python -m localstage serve

# Measures synth, tests, cold starts, assets (and, on localstage, requests per operation)
# and rewrites docs/benchmarks.md and docs/benchmarks/*.png. Reports; never fails on a target.
bench: install
	$(BIN)/python -m bench

diff: install
	$(CDK) diff $(STAGE_STACKS) -c stage=$(STAGE) $(STAGE_OPTIONS)

# TUNING=local deploys STAGE with the tuning cdk.json gives stage `local` (short
# recursive-processor hops), as the pull request workflow does for its e2e run;
# TRACING=true|false turns active X-Ray tracing on or off for the stage.
deploy: install
	$(CDK) deploy $(STAGE_STACKS) -c stage=$(STAGE) $(STAGE_OPTIONS) $(APPROVAL)

# An ephemeral stage's stacks deleted by their names and tags (app, stage), without
# synthesizing the app: what CI runs when a pull request closes, so a pull request whose
# last commit does not build, or one that removed a stack, still loses its whole stage.
teardown: install
	$(if $(EPHEMERAL),,$(error $(STAGE) is a persistent stage: teardown is for ephemeral ones))
	@# The stacks go even when the sweep of the e2e observers fails; then the target fails.
	@status=0; \
	$(BIN)/python -m localstage.deployed sweep-observers --stage $(STAGE) || status=$$?; \
	$(BIN)/python -m localstage.deployed destroy-stage --stage $(STAGE) --app $(APP_NAME) \
		--qualifier $(BOOTSTRAP_QUALIFIER) --names $(STACK_NAMES) && exit $$status

# The stage's e2e observers (queues and rules on its bus that no stack owns, left by an e2e
# run that was killed) go first: they would outlive the stacks. The stacks go even when
# the sweep fails (make reports the error and goes on).
destroy: install
	-$(BIN)/python -m localstage.deployed sweep-observers --stage $(STAGE)
	$(CDK) destroy $(STAGE_STACKS) -c stage=$(STAGE) $(if $(EPHEMERAL),--force,)

# Once per account and region, by a person with admin rights (after `cdk bootstrap`): the
# account app (account_app.py): <app_name>-ApiGatewayAccount, API Gateway's CloudWatch
# role, which every stage's API logging needs; and, with GITHUB_REPO (owner/name),
# <app_name>-CiAccess, GitHub's OIDC provider and one deploy role per environment.
# ENVIRONMENTS=pull_request,staging or ENVIRONMENTS=production creates only those roles
# (one AWS account per environment); an account that already has GitHub's provider:
# GITHUB_OIDC_PROVIDER_ARN=arn:aws:iam::...
ACCOUNT_APP := $(BIN)/python account_app.py
account: install
	$(CDK) deploy --all -a "$(ACCOUNT_APP)" --output cdk.out/account \
		$(if $(GITHUB_REPO),-c github_repo=$(GITHUB_REPO),) \
		$(if $(ENVIRONMENTS),-c environments=$(ENVIRONMENTS),) \
		$(if $(GITHUB_OIDC_PROVIDER_ARN),-c github_oidc_provider_arn=$(GITHUB_OIDC_PROVIDER_ARN),)

# The former name of `make account`.
ci-access: account

clean:
	rm -rf cdk.out .localstage .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -not -path "./node_modules/*" -prune -exec rm -rf {} +
