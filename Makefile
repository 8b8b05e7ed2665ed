# model-validation-operator: every developer and CI entry point.
# `make demo` and `make test` are the two commands the README promises.

SHELL := /bin/bash
CARGO ?= cargo
# Tools the tests need are cached per machine, outside the work tree (MVO_CACHE_DIR to move it).
CACHE_DIR ?= $(or $(MVO_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/model-validation-operator)
PEER_VENV ?= $(CURDIR)/target/peer-venv
export MVO_CACHE_DIR := $(CACHE_DIR)
export MODEL_SIGNING_PEER_PYTHON := $(PEER_VENV)/bin/python

.PHONY: all build release test lint fmt peer-venv bench clean crds testbin cluster-up cluster-down demo fuzz images debs docs

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release --workspace --bins

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The real Python peer (model-signing 1.1.1) for the interop tests.
peer-venv:
	@bash hack/peer-venv.sh "$(PEER_VENV)"

# etcd and kube-apiserver for the local control plane, the test registries (crane,
# oci-registry, distribution-registry), helm and kustomize (the Helm chart's tests), cert-manager's
# controller, CA injector and CRDs (the chart's certManager mode), and the real node's kubelet,
# kube-controller-manager, kube-scheduler and containerd, built from Go modules once per
# machine into $(MVO_CACHE_DIR)/testbin (minutes the first time).
testbin:
	@bash hack/testbin/build.sh --node

# Debian packages the tests use, installed when missing: skopeo reads the built images and
# podman loads and runs them (as `docker load` would); runc, the CNI plugins, busybox-static
# and catatonit (the sandbox image) make the real node.
debs:
	@bash hack/debs.sh skopeo:skopeo podman:podman runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
		/bin/busybox:busybox-static catatonit:catatonit ip:iproute2 iptables-save:iptables

# The real-node suite installs the operator from its own images: `images` builds them.
test: lint peer-venv release testbin debs images docs
	$(CARGO) test --workspace --locked --no-fail-fast

# The documentation site: mdBook over docs/ into target/book/ (mdbook installed into
# $(MVO_CACHE_DIR) once); its links and the CRD reference are checked by tests/docs.rs.
docs:
	@bash hack/docs.sh

# The operator's and the agent's images as OCI archives in target/images/, without a container
# engine, reproducibly (hack/images.sh; REGISTRY= and TAG= to name them).
images: release
	@bash hack/images.sh

# A long-lived local control plane (etcd + kube-apiserver + pod runner) for the
# demo and kubectl; its kubeconfig is target/local-cluster/kubeconfig. NODE=real runs pods on a
# real node instead (containerd, kubelet, controller-manager, scheduler; root), with the
# operator and agent images of `make images` imported.
NODE ?= runner
cluster-up: testbin $(if $(filter real,$(NODE)),debs images)
	@$(CARGO) run --quiet --locked -p test-cluster -- up --dir $(CURDIR)/target/local-cluster \
		--node $(NODE) $(if $(filter real,$(NODE)),--image target/images/operator.tar --image target/images/agent.tar)

cluster-down:
	@$(CARGO) run --quiet --locked -p test-cluster -- down --dir $(CURDIR)/target/local-cluster

# Build, start a local control plane, run the operator, show a verified and a refused pod, clean up.
demo: testbin
	@bash hack/demo.sh

# Coverage-guided fuzzing of every parser of untrusted input on stable Rust (fuzz/README.md):
# each target FUZZ_SECONDS seconds, one after another. Not part of `make test`; installs
# cargo-fuzz into $(MVO_CACHE_DIR)/fuzz once.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash hack/fuzz.sh

bench: release peer-venv
	bash bench/verify-vs-peer.sh
	bash bench/webhook-load.sh
	bash bench/webhook-attack.sh
	bash bench/faults.sh
	bash bench/authorities.sh
	bash bench/policy-scale.sh
	bash bench/oci-admission.sh
	bash bench/sigstore-verify.sh
	bash bench/controller-scale.sh

# Regenerate deploy/crds/ and the Helm chart's crds/ from the Rust types, then docs/reference/crds.md
# from those (tests fail when they drift).
crds:
	UPDATE_CRDS=1 $(CARGO) test -p model-validation-operator --test crds
	UPDATE_DOCS=1 $(CARGO) test -p model-validation-operator --test docs -- crd_reference_matches_the_crds

clean:
	$(CARGO) clean
