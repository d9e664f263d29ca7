# workspaced — conventional entry points. See README.md.
SHELL := /bin/bash
GO ?= go
GOTESTFLAGS ?= -race -count=1 -timeout 20m
FUZZTIME ?= 5s

.PHONY: all build deps run test test-short bench lint fuzz faults images selftest clean

all: build

build:
	$(GO) build ./...

## deps: install the Debian/Ubuntu packages `make run` needs if missing
## (busybox-static, redis-server; sudo when not root). .ci/run uses the same script.
deps:
	./scripts/install-deps.sh run

## run: install what is missing, build images and start workspaced locally (Docker runtime, gochannel bus).
run: deps
	./images/build.sh
	./scripts/run-local.sh

## test: the full suite (real redis-server, Docker engine, in-process AWS emulator), then short fuzz runs.
test:
	$(GO) test $(GOTESTFLAGS) ./...
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## test-short: unit tests only (no Docker, no Redis).
test-short:
	$(GO) test -short -count=1 ./...

## bench: benchmarks; results and the reproduce command go to BENCHMARKS.md.
bench:
	./scripts/bench.sh

## lint: gofmt, go vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## faults: the fault-injection scenarios (every TestFault* test, real engine and redis-server);
## the table lands in docs/operations.md.
faults:
	./scripts/faults.sh

## fuzz: run every fuzz target for FUZZTIME (seed corpora live in testdata/fuzz).
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## selftest: run workspace-selftest in a workspace of the local stack (`make run`
## in another terminal); SELFTEST_CONVERSATION names the conversation.
SELFTEST_CONVERSATION ?= selftest
selftest:
	$(GO) build -o bin/wsctl ./cmd/wsctl
	WORKSPACED_URL=$${WORKSPACED_URL:-http://127.0.0.1:8000} \
	WORKSPACED_API_KEY=$${WORKSPACED_API_KEY:-$$(cat $${WORKSPACED_STATE_DIR:-.cache/run}/api-key)} \
	  bin/wsctl selftest $(SELFTEST_CONVERSATION)

## images: build the local images FROM scratch (no registry needed).
images:
	./images/build.sh

clean:
	$(GO) clean -testcache
