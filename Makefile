# auditops Makefile, in kubebuilder's conventions. Every tool is pinned and
# installed into ./bin by this Makefile; nothing is expected on the machine
# besides Go, make and bash (hack/deps.sh installs the rest through apt).

IMG ?= auditops/manager:dev
K8S_VERSION ?= v1.37.1
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.1
# staticcheck 2026.2.2 (honnef.co/go/tools v0.8.2): builds with Go 1.26 and
# checks this go 1.26 module.
STATICCHECK_VERSION ?= v0.8.2
# Helm for the chart's lint and render tests (charts/auditops); no replace
# directives in its go.mod, so go install builds it (about 3 min cold).
HELM_VERSION ?= v4.3.2
# make image: the image's version label and the OCI layout it is written to.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_DIR ?= $(shell pwd)/bin/image

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
STATICCHECK ?= $(LOCALBIN)/staticcheck-$(STATICCHECK_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
K8S_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
KUBECTL ?= $(K8S_ASSETS)/kubectl

# go test flags; CI runs all packages, at most two at a time on two cores.
GO_TEST_FLAGS ?= -p 2 -timeout 40m
BENCH_EVENTS ?= 1000000
BENCH_ONLY ?=
BENCH_STORES ?=
BENCH_PG_PARTITIONS ?=
BENCH_SEAL ?=
BENCH_PG_DURABLE ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests from the markers.
	$(CONTROLLER_GEN) rbac:roleName=auditops-manager crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The chart carries the same CRD, manager ClusterRole and monitoring files (test/e2e checks the copies).
	rm -f charts/auditops/crds/*.yaml
	cp config/crd/bases/*.yaml charts/auditops/crds/
	cp config/rbac/role.yaml charts/auditops/templates/manager_role.yaml
	cp config/monitoring/prometheusrule.yaml charts/auditops/files/
	cp config/monitoring/dashboards/*.json charts/auditops/files/dashboards/

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: staticcheck
staticcheck: $(STATICCHECK) ## Run staticcheck (pinned, installed into bin/) with its default checks.
	$(STATICCHECK) ./...

.PHONY: boilerplate
boilerplate: ## Check that every Go file starts with the licence header of hack/boilerplate.go.txt.
	hack/check-boilerplate.sh

.PHONY: control-plane
control-plane: ## Build etcd, kube-apiserver and kubectl into bin/k8s/$(K8S_VERSION) (once).
	K8S_VERSION=$(K8S_VERSION) hack/build-control-plane.sh >/dev/null

.PHONY: test
test: manifests generate fmt vet staticcheck boilerplate control-plane helm ## Run every test against real components (kube-apiserver, etcd, PostgreSQL).
	HELM=$(HELM) KUBEBUILDER_ASSETS=$(K8S_ASSETS) hack/with-postgres.sh go test $(GO_TEST_FLAGS) ./...
	@# The build that adds a field to events and a canonical encoding
	@# version 2 for it: old leaves must still verify (issue 20.1).
	@# (Only that test: the seal package's own tests pin version 1 as current.)
	hack/with-postgres.sh go test -tags sealfieldtest $(GO_TEST_FLAGS) -run '^TestFieldAddedLater$$' ./internal/sealverify/

FUZZTIME ?= 60s
# Every fuzz target, as package:target.
FUZZ_TARGETS = ./internal/ingest:FuzzDecodeEventList ./internal/ingest:FuzzDecodeEvents \
	./internal/ingest:FuzzCutKube ./internal/ingest:FuzzCutEvents ./internal/jsoncut:FuzzChunks \
	./internal/apiserver:FuzzEndpointParams ./internal/jsonshape:FuzzValid ./internal/store/payload:FuzzDecode

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (their seed corpora run in make test).
	@hack/with-postgres.sh bash -ec 'for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		go test -run "^\$$" -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	done'

.PHONY: bench
bench: build ## Run the end-to-end benchmark (BENCH_EVENTS events) into bench/results.json; see bench/README.md.
	@command -v jq >/dev/null 2>&1 || { echo "installing jq (apt-get)"; DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
	BENCH_EVENTS=$(BENCH_EVENTS) BENCH_ONLY=$(BENCH_ONLY) BENCH_STORES=$(BENCH_STORES) BENCH_PG_PARTITIONS=$(BENCH_PG_PARTITIONS) BENCH_SEAL=$(BENCH_SEAL) PG_DURABLE=$(BENCH_PG_DURABLE) hack/with-postgres.sh go run ./bench bench/results.json

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -o bin/manager .

# make run DEMO=0: without the demo activity and the sample reports.
DEMO ?= 1

.PHONY: run
run: build control-plane ## Start a local control plane and the manager (SQLite store), act in team-a as two users, run the sample reports.
	RUN_LOCAL_DEMO=$(DEMO) hack/run-local.sh

.PHONY: demo
demo: control-plane ## Repeat the demo activity in team-a and re-run the sample reports (against a running make run).
	K8S_VERSION=$(K8S_VERSION) hack/demo.sh

.PHONY: run-cluster
run-cluster: build ## Run the manager against the cluster of the current kubeconfig.
	bin/manager $(RUN_ARGS)

.PHONY: image
image: manifests generate ## Build the manager's OCI image into bin/image (OCI layout, SPDX SBOM), without a container engine.
	go run ./hack/image -o $(IMAGE_DIR) -version $(VERSION)

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict the chart with each of its ci/ values files.
	$(HELM) lint --strict charts/auditops
	for f in charts/auditops/ci/*.yaml; do $(HELM) lint --strict charts/auditops --values $$f; done

.PHONY: docker-build
docker-build: ## Build the manager image (needs a container engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize control-plane ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize control-plane ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

APISERVICE_CERT ?= config/apiservice/generated/tls.crt
# DEPLOY_CONFIG picks the variant: config/default (SQLite), config/postgres, config/certmanager.
DEPLOY_CONFIG ?= config/default

$(APISERVICE_CERT):
	hack/gen-apiservice-cert.sh

.PHONY: deploy
deploy: manifests kustomize control-plane $(APISERVICE_CERT) ## Deploy auditops (IMG=..., DEPLOY_CONFIG=config/default) to the cluster of the current kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build $(DEPLOY_CONFIG) | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize control-plane $(APISERVICE_CERT) ## Remove auditops from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build $(DEPLOY_CONFIG) | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm
helm: $(HELM)
$(HELM): | $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

$(STATICCHECK): | $(LOCALBIN)
	$(call go-install-tool,$(STATICCHECK),honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

# The gs:// and azblob:// sink tests run against fake-gcs-server (Go, about
# 75 s cold) and Azurite (npm ci of hack/azurite, 15-60 s), built or
# installed once into bin/ at the versions pinned in hack/storage-emulator.sh
# and hack/azurite/package-lock.json; the tests start them.
.PHONY: storage-emulators
storage-emulators: ## Build fake-gcs-server and install Azurite into bin/ (once).
	hack/storage-emulator.sh gcs build >/dev/null
	hack/storage-emulator.sh azure build >/dev/null
test: storage-emulators

# go-install-tool installs package $2 at version $3 as $1 (name carries the version,
# so bumping the pin rebuilds it).
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
echo "Installing $(2)@$(3)"; \
tmp=$$(mktemp -d); \
GOBIN=$$tmp go install $(2)@$(3); \
mv $$tmp/* $(1); \
rm -rf $$tmp; \
}
endef
