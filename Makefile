# Parley. `make run` starts everything on embedded defaults; `make test`
# installs and starts what the tests need and runs them.
GO        ?= go
BIN       := bin/parley
BENCH_BIN := bin/parley-bench
TOOLS     := $(CURDIR)/.tools
BUF       := github.com/bufbuild/buf/cmd/buf@v1.50.0
PROTOCGEN := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
CASSANDRA := deploy/cassandra/cassandra-node
S3NODE    := deploy/s3/s3-node
# Under CI a backend the tests need that is missing fails them, never skips.
export PARLEY_REQUIRE_CASSANDRA ?= $(if $(filter true,$(CI)),1,)
export PARLEY_REQUIRE_S3 ?= $(if $(filter true,$(CI)),1,)

.PHONY: all build run test test-deps test-go test-web test-fuzz test-deploy deploy-tools image vet fuzz proto bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/parley
	$(GO) build -o $(BENCH_BIN) ./cmd/parley-bench

run: build
	./$(BIN) dev

vet:
	$(GO) vet ./...

# Runs a short fuzz of every fuzz target, then starts a Cassandra node for
# the ScyllaDB backend tests and an S3 server (versitygw) for the S3 media
# backend tests, runs every Go test with the race detector, and stops both
# whatever the outcome.
test: test-deps vet test-fuzz test-web test-deploy
	$(CASSANDRA) start
	$(S3NODE) start || { $(CASSANDRA) stop; exit 1; }
	$(MAKE) test-go; rc=$$?; $(S3NODE) stop; $(CASSANDRA) stop; exit $$rc

# The end-to-end tests run a second time on the portable goroutine-per-
# connection WebSocket transport (on Pebble only: the store is not what
# differs).
test-go:
	$(GO) test -race -count=1 -timeout 45m ./...
	PARLEY_WS_TRANSPORT=goroutine PARLEY_TEST_STORES=pebble $(GO) test -race -count=1 -timeout 30m ./cmd/parley/node

# What the tests need besides Go, installed from Debian with apt-get (as
# root, else through sudo) when missing: Chromium where the browser tests
# launch it, Node.js and npm for the web tests, a Java 17 JDK and Maven for
# the Cassandra test node, ffmpeg for the media derivative tests, etcd for
# the chart's API server test. `make -n test-deps` shows what would be
# installed.
# The web tests need Node.js 20 or later, which Debian 12's packages are not.
CHROMIUM      = $(or $(PARLEY_CHROMIUM),/usr/bin/chromium)
JAVA_CMDS     = $(if $(JAVA_HOME),$(JAVA_HOME)/bin/java $(JAVA_HOME)/bin/javac,java javac)
TEST_PACKAGES = $(strip $(if $(wildcard $(CHROMIUM)),,chromium fonts-noto-color-emoji) \
	$(call packages-for,node npm,nodejs npm) \
	$(call packages-for,$(JAVA_CMDS),openjdk-17-jdk-headless) \
	$(call packages-for,mvn,maven) \
	$(call packages-for,ffmpeg ffprobe,ffmpeg) \
	$(call packages-for,etcd,etcd-server))
# $(call packages-for,COMMANDS,PACKAGES): PACKAGES when a command is not on PATH.
packages-for  = $(if $(strip $(foreach c,$(1),$(if $(shell command -v $(c)),,$(c)))),$(2))
APT_GET       = $(if $(filter 0,$(shell id -u)),apt-get,sudo apt-get)
test-deps:
	$(if $(TEST_PACKAGES),$(APT_GET) update && $(APT_GET) install -y $(TEST_PACKAGES))
	@node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' || \
		{ echo "the web tests need Node.js 20 or later, not $$(node --version) (Debian 12 has 18): see nodejs.org" >&2; exit 1; }

# The web client (gateway/web): SDK unit tests under Node, then browser tests
# in Chromium against a real `parley dev`. The pinned npm dev dependencies
# are installed when missing.
WEB := gateway/web
test-web: build test-deps $(WEB)/node_modules/.package-lock.json
	cd $(WEB) && npm test && npm run test:browser

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json | test-deps
	cd $(WEB) && npm ci --no-audit --no-fund

# Runs every fuzz target of every package for FUZZTIME each (go test -fuzz
# takes one target of one package at a time): in each package whose tests
# declare a func Fuzz..., the targets go test -list names. A crasher stops
# it, saved under the package's testdata/fuzz.
FUZZTIME ?= 20s
fuzz:
	@for dir in $$($(GO) list -f '{{.Dir}}' ./...); do \
		grep -qs '^func Fuzz' $$dir/*_test.go || continue; \
		targets=$$($(GO) test -list 'Fuzz.*' $$dir) || { echo "$$targets"; exit 1; }; \
		for t in $$(echo "$$targets" | grep '^Fuzz'); do \
			echo "fuzz: $$t in $${dir#$(CURDIR)/} for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
		done; \
	done

# make test's short fuzz run: 7 targets take about a minute on 2 cores.
# A count, not a duration: Go 1.26's fuzzing coordinator can fail a target
# with a spurious "context deadline exceeded" when a duration ends while a
# worker runs an input (golang/go#75804, fixed in Go 1.27). 20,000 inputs
# take 1 to 7 s per target here.
TEST_FUZZTIME ?= 20000x
test-fuzz:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

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
	run() { ./$(BENCH_BIN) "$$@" --url ws://$(BENCH_HTTP)/ws --nats-url nats://127.0.0.1:$(BENCH_NATS) \
		--server-pid $$pid --wait 60s; }; \
	run connect --clients 5000 --hold 20s && \
	run groups --rooms 100 --members 10 --rate 2000 --duration 30s && \
	run megaroom --members 5000 && \
	run reconnect --clients 1000

# The container image (deploy/image): a static binary, CA certificates and
# the non-root user 65532 in an OCI image tarball, built without a
# container engine. IMAGE_TAG names it inside the tarball.
STATIC    := bin/parley-static
IMAGE     := bin/parley-image.tar
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(STATIC) ./cmd/parley
	cd deploy && $(GO) run ./image --binary ../$(STATIC) --out ../$(IMAGE) --tag parley:$(IMAGE_TAG)

# What the deploy tests run, installed when missing under PARLEY_CACHE
# (outside the repo): helm (built from the Go module proxy, about 3-9
# minutes the first time), kubeconform, kube-score, the nats CLI (the
# runbook's commands), and the Kubernetes 1.35
# JSON schemas that the PyPI package kubernetes-validate ships, rewritten
# for kubeconform (no $$id, relative $$ref).
PARLEY_CACHE  ?= $(HOME)/.cache/parley
HELM          := $(PARLEY_CACHE)/tools/helm-v3.22.0/helm
KUBECONFORM   := $(PARLEY_CACHE)/tools/kubeconform-v0.8.0/kubeconform
KUBE_SCORE    := $(PARLEY_CACHE)/tools/kube-score-v1.20.0/kube-score
NATS_CLI      := $(PARLEY_CACHE)/tools/natscli-v0.5.1/nats
K8S_VALIDATE  := 1.37.0
K8S_SCHEMAS   := $(PARLEY_CACHE)/k8s-schemas-$(K8S_VALIDATE)
deploy-tools: $(HELM) $(KUBECONFORM) $(KUBE_SCORE) $(NATS_CLI) $(K8S_SCHEMAS)/v1.35.0-standalone-strict/_definitions.json
$(HELM):
	GOBIN=$(@D) $(GO) install -ldflags '-X helm.sh/helm/v3/internal/version.version=v3.22.0' helm.sh/helm/v3/cmd/helm@v3.22.0
$(KUBECONFORM):
	GOBIN=$(@D) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
$(KUBE_SCORE):
	GOBIN=$(@D) $(GO) install github.com/zegl/kube-score/cmd/kube-score@v1.20.0
$(NATS_CLI):
	GOBIN=$(@D) $(GO) install github.com/nats-io/natscli/nats@v0.5.1
$(K8S_SCHEMAS)/v1.35.0-standalone-strict/_definitions.json:
	deploy/kubeconform-schemas.sh $(K8S_VALIDATE) v1.35.0 $(K8S_SCHEMAS)

# kube-apiserver and kubectl for the chart's test against a real API server
# (deploy/kubeapi, with etcd from test-deps), built from the Go module proxy
# by deploy/kubeapi/build.sh: about 6 minutes the first time on 2 cores, 16
# on a heavily loaded machine.
KUBE_VERSION   := v1.35.4
KUBE_TOOLS     := $(PARLEY_CACHE)/kubernetes-$(KUBE_VERSION)
KUBE_APISERVER := $(KUBE_TOOLS)/kube-apiserver
KUBECTL        := $(KUBE_TOOLS)/kubectl
deploy-tools: $(KUBE_APISERVER) $(KUBECTL)
$(KUBE_APISERVER) $(KUBECTL) &:
	GO=$(GO) nice deploy/kubeapi/build.sh $(KUBE_VERSION) $(KUBE_TOOLS)

# The deploy module's tests (its own Go module, so that Kubernetes stays
# out of the main one): the image runs `parley dev`; the chart lints,
# renders, validates and keeps its rollout invariants in every profile;
# dashboards and alerts use only series the roles export; the runbook's
# backup and restore drill brings every acknowledged message back; the
# chart installs on a real kube-apiserver.
test-deploy: build deploy-tools
	CGO_ENABLED=0 $(GO) build -trimpath -o $(STATIC) ./cmd/parley
	cd deploy && PARLEY_REQUIRE_DEPLOY_TOOLS=1 PARLEY_BIN=$(CURDIR)/$(BIN) PARLEY_STATIC_BIN=$(CURDIR)/$(STATIC) \
		PARLEY_HELM=$(HELM) PARLEY_KUBECONFORM=$(KUBECONFORM) PARLEY_KUBE_SCORE=$(KUBE_SCORE) PARLEY_K8S_SCHEMAS=$(K8S_SCHEMAS) PARLEY_NATS_CLI=$(NATS_CLI) \
		PARLEY_KUBE_APISERVER=$(KUBE_APISERVER) PARLEY_KUBECTL=$(KUBECTL) \
		$(GO) test -race -count=1 -timeout 20m ./...

clean:
	rm -rf bin .tools
