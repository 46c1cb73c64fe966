# Parley. `make run` starts everything on embedded defaults; `make test`
# installs and starts what the tests need and runs them.
GO        ?= go
BIN       := bin/parley
TOOLS     := $(CURDIR)/.tools
BUF       := github.com/bufbuild/buf/cmd/buf@v1.50.0
PROTOCGEN := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
CASSANDRA := deploy/cassandra/cassandra-node
# Under CI a backend the tests need that is missing fails them, never skips.
export PARLEY_REQUIRE_CASSANDRA ?= $(if $(filter true,$(CI)),1,)

.PHONY: all build run test test-go test-web vet fuzz proto bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/parley

run: build
	./$(BIN) dev

vet:
	$(GO) vet ./...

# Starts a Cassandra node for the ScyllaDB backend tests, runs every Go test
# with the race detector, and stops the node whatever the outcome.
test: vet test-web
	$(CASSANDRA) start
	$(MAKE) test-go; rc=$$?; $(CASSANDRA) stop; exit $$rc

# The end-to-end tests run a second time on the portable goroutine-per-
# connection WebSocket transport (on Pebble only: the store is not what
# differs).
test-go:
	$(GO) test -race -count=1 -timeout 45m ./...
	PARLEY_WS_TRANSPORT=goroutine PARLEY_TEST_STORES=pebble $(GO) test -race -count=1 -timeout 30m ./cmd/parley/node

# The web client (gateway/web): SDK unit tests under Node, then browser tests
# in Chromium against a real `parley dev`. Chromium (Debian) and the pinned
# npm dev dependencies are installed when missing.
WEB := gateway/web
test-web: build /usr/bin/chromium $(WEB)/node_modules/.package-lock.json
	cd $(WEB) && npm test && npm run test:browser

/usr/bin/chromium:
	apt-get update && apt-get install -y chromium fonts-noto-color-emoji

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund

# A short run of every fuzz target (go test -fuzz takes one at a time).
FUZZTIME ?= 20s
fuzz:
	@for t in $$($(GO) test -list 'Fuzz.*' ./pkg/protocol | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./pkg/protocol || exit 1; \
	done

# Regenerates pkg/proto from schemas/ with pinned tools from the Go proxy.
proto:
	GOBIN=$(TOOLS) $(GO) install $(BUF)
	GOBIN=$(TOOLS) $(GO) install $(PROTOCGEN)
	cd schemas && PATH=$(TOOLS):$$PATH $(TOOLS)/buf lint && PATH=$(TOOLS):$$PATH $(TOOLS)/buf generate

# A short standard bench profile (a few minutes on 2 cores) against a fresh
# `parley dev` on a temporary data dir, stopped afterwards whatever happens.
# Results: bench/results/<scenario>-<date>/ (see bench/README.md).
BENCH_HTTP ?= 127.0.0.1:8080
BENCH_NATS ?= 4222
BENCH_NATS_HTTP ?= 8222
bench: build
	@data=$$(mktemp -d); \
	./$(BIN) dev --data-dir $$data --log-level warn --http-addr $(BENCH_HTTP) --rate-send -1 --rate-requests -1 \
		--nats-port $(BENCH_NATS) --nats-http-port $(BENCH_NATS_HTTP) & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid; rm -rf $$data' EXIT; \
	run() { ./$(BIN) bench "$$@" --url ws://$(BENCH_HTTP)/ws --nats-url nats://127.0.0.1:$(BENCH_NATS) \
		--server-pid $$pid --wait 60s; }; \
	run connect --clients 5000 --hold 20s && \
	run groups --rooms 100 --members 10 --rate 2000 --duration 30s && \
	run megaroom --members 5000 && \
	run reconnect --clients 1000

clean:
	rm -rf bin .tools
