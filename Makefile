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

.PHONY: all build run test test-go vet fuzz proto clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/parley

run: build
	./$(BIN) dev

vet:
	$(GO) vet ./...

# Starts a Cassandra node for the ScyllaDB backend tests, runs every Go test
# with the race detector, and stops the node whatever the outcome.
test: vet
	$(CASSANDRA) start
	$(MAKE) test-go; rc=$$?; $(CASSANDRA) stop; exit $$rc

test-go:
	$(GO) test -race -count=1 -timeout 45m ./...

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

clean:
	rm -rf bin .tools
