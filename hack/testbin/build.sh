#!/usr/bin/env bash
# Builds the local control plane's test tools, etcd and kube-apiserver, the crane registry
# client, two OCI registries (oci-registry, go-containerregistry's with the referrers API,
# TLS and basic auth; distribution-registry, distribution v3, without the referrers API), and
# helm and kustomize (the Helm chart's tests), cert-manager's controller, CA injector and CRDs
# (the chart's certManager mode test), from
# the Go modules next to this script, into a per-machine cache outside the work tree
# (with --node also the real node's: kubelet, kube-controller-manager and
# kube-scheduler from the same Kubernetes module, and containerd v2 with its runc
# shim and ctr):
#
#   ${MVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-validation-operator}/testbin/v<k8s>/
#
# Idempotent: a binary is rebuilt only when it is missing or its stamp (a hash
# of go.mod, go.sum, the module's own .go files, the build flags and the Go version) no longer
# matches.
# The Go module and build caches of a rebuild (about 5.5 GB for all the tools)
# live in a scratch directory that is deleted when the script ends: only the
# binaries are worth keeping, and a CI machine's disk is not large enough for both
# them and the Rust test binaries. MVO_KEEP_GO_CACHES=1 keeps the scratch for
# repeated rebuilds.
# Go is used for these test tools only. Usage: build.sh [--node] [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${MVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-validation-operator}"

# One source of truth for the versions: the go.mod files.
k8s_version="$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/kube-apiserver/go.mod" | head -n1)"
etcd_version="$(sed -n 's/^\s*go.etcd.io\/etcd\/server\/v3 \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/etcd/go.mod" | head -n1)"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
	echo "build.sh: cannot read the k8s.io/kubernetes or etcd version from $here/*/go.mod" >&2
	exit 1
fi
out_dir="$cache_root/testbin/$k8s_version"

node=false
for arg in "$@"; do
	case "$arg" in
	--print-dir)
		echo "$out_dir"
		exit 0
		;;
	--node) node=true ;;
	*)
		echo "build.sh: unknown argument $arg (use --node, --print-dir)" >&2
		exit 2
		;;
	esac
done
containerd_version="$(sed -n 's/^\s*github.com\/containerd\/containerd\/v2 \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/containerd/go.mod" | head -n1)"

if ! command -v go >/dev/null 2>&1; then
	echo "build.sh: Go is not installed; the local control plane is built from Go modules (Go >= 1.26 needed)" >&2
	exit 1
fi

export CGO_ENABLED=0
# Never let a build touch go.mod/go.sum: they are committed and must be complete.
export GOFLAGS="-mod=readonly -buildvcs=false"

mkdir -p "$out_dir"
# Two `make test` or cargo runs may ask at once; build only once.
exec 9>"$out_dir/.lock"
flock 9

# The Go caches, made on the first rebuild only (a cached run downloads nothing).
scratch="$cache_root/go-scratch"
export GOMODCACHE="$scratch/mod" GOCACHE="$scratch/build"
drop_scratch() {
	[[ -d "$scratch" && "${MVO_KEEP_GO_CACHES:-}" != 1 ]] || return 0
	# The module cache is read-only by design; `go clean -modcache` knows how to remove it.
	go clean -modcache >/dev/null 2>&1 || true
	rm -rf "$scratch"
}
trap drop_scratch EXIT

log() { printf '[testbin %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# stamp DIR LDFLAGS: what a cached binary must have been built from. A module that holds a
# main package of its own (registry/oci-registry) is rebuilt when that source changes too.
stamp() {
	{
		go version
		echo "$2"
		cat "$1/go.mod" "$1/go.sum"
		find "$1" -name '*.go' -type f -print0 | sort -z | xargs -0r cat
	} | sha256sum | cut -d' ' -f1
}

# Every staging module that k8s.io/kubernetes maps to ./staging must be
# replaced by us too, or resolution fails with "unknown revision v0.0.0".
check_staging_replaces() {
	local gomod missing=()
	gomod="$(cd "$here/kube-apiserver" && go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
	while read -r mod; do
		grep -q "^\s*k8s.io/$mod => k8s.io/$mod v0\.${k8s_version#v1.}$" "$here/kube-apiserver/go.mod" || missing+=("$mod")
	done < <(sed -n 's|^\s*k8s.io/\([^ ]*\) => ./staging/src/k8s.io/.*|\1|p' "$gomod")
	if ((${#missing[@]})); then
		echo "build.sh: hack/testbin/kube-apiserver/go.mod lacks replace directives for: ${missing[*]}" >&2
		echo "  add 'k8s.io/X => k8s.io/X v0.${k8s_version#v1.}' for each, then run 'go mod tidy' there" >&2
		exit 1
	fi
}

# build NAME MODULE_DIR PACKAGE LDFLAGS [TAGS]
build() {
	local name="$1" dir="$2" pkg="$3" ldflags="$4" tags="${5:-}" want have total start
	want="$(stamp "$dir" "$ldflags${tags:+ tags=$tags}")"
	have="$(cat "$out_dir/$name.stamp" 2>/dev/null || true)"
	if [[ -x "$out_dir/$name" && "$want" == "$have" ]]; then
		log "$name is up to date in $out_dir"
		return
	fi
	start=$SECONDS
	if [[ "$dir" == "$here/kube-apiserver" && -z "${staging_checked:-}" ]]; then
		check_staging_replaces
		staging_checked=1
	fi
	log "downloading the Go modules for $name (first time on this machine only)"
	(cd "$dir" && go mod download)
	total="$(cd "$dir" && go list -deps "$pkg" | wc -l)"
	log "building $name ($total packages; a cold build of kube-apiserver takes several minutes on 2 cores)"
	# `go build -v` names each package as it is compiled; turn that into a
	# progress line every 100 packages so a long build is visibly alive.
	(cd "$dir" && go build -v -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out_dir/$name.tmp" "$pkg") 2>&1 |
		awk -v total="$total" -v name="$name" '
			/^(#|go: |.*\.go:[0-9]+)/ { print; fflush(); next }
			{ n++; if (n % 100 == 0) { printf "[testbin] %s: %d/%d packages compiled\n", name, n, total; fflush() } }
		' >&2
	if [[ "${PIPESTATUS[0]}" -ne 0 ]]; then
		echo "build.sh: building $name failed (see the errors above)" >&2
		exit 1
	fi
	mv -f "$out_dir/$name.tmp" "$out_dir/$name"
	echo "$want" >"$out_dir/$name.stamp"
	log "built $name in $((SECONDS - start)) s -> $out_dir/$name"
}

# copy_cert_manager_crds: cert-manager's CRDs, from the module source of the version its
# go.mod pins, into $out_dir/cert-manager-crds (kept while its VERSION file matches).
copy_cert_manager_crds() {
	local dir="$out_dir/cert-manager-crds" src
	if [[ "$(cat "$dir/VERSION" 2>/dev/null)" == "$cert_manager_version" ]]; then
		log "cert-manager CRDs $cert_manager_version are up to date in $dir"
		return
	fi
	src="$(cd "$here/cert-manager" && go mod download -json "github.com/cert-manager/cert-manager@$cert_manager_version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
	if [[ -z "$src" ]] || ! compgen -G "$src/deploy/crds/*.yaml" >/dev/null; then
		echo "build.sh: no deploy/crds/*.yaml in cert-manager $cert_manager_version (${src:-not downloaded})" >&2
		exit 1
	fi
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	cp "$src"/deploy/crds/*.yaml "$dir.tmp/"
	# The module cache is read-only; the copies need not be.
	chmod u+w "$dir.tmp"/*.yaml
	echo "$cert_manager_version" >"$dir.tmp/VERSION"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
	log "copied cert-manager $cert_manager_version CRDs to $dir"
}

k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"
build kube-apiserver "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
echo "$k8s_version" >"$out_dir/VERSION"
log "etcd $etcd_version and kube-apiserver $k8s_version ready in $out_dir"
# crane, the registry client of the same module as oci-registry below.
# (A direct requirement, as the oci-registry source makes it, may stand on a `require` line.)
crane_version="$(sed -n 's/^\s*\(require \)\?github.com\/google\/go-containerregistry \(v[0-9.]*\)\( \/\/ indirect\)\?$/\2/p' "$here/registry/go.mod" | head -n1)"
build crane "$here/registry" github.com/google/go-containerregistry/cmd/crane "-s -w"
log "crane $crane_version ready in $out_dir"
# The test registries (test_cluster::registry::Kind): go-containerregistry's registry with the
# referrers API on, TLS and basic auth (a main package of ours; after crane it only links), and
# distribution v3, a registry without the referrers API (a cold build takes about 100 s).
build oci-registry "$here/registry" ./oci-registry "-s -w"
log "oci-registry (go-containerregistry $crane_version, referrers API on) ready in $out_dir"
distribution_version="$(sed -n 's/^\s*github.com\/distribution\/distribution\/v3 \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/distribution/go.mod" | head -n1)"
build distribution-registry "$here/distribution" github.com/distribution/distribution/v3/cmd/registry \
	"-s -w -X github.com/distribution/distribution/v3/version.version=$distribution_version"
log "distribution-registry $distribution_version (no referrers API) ready in $out_dir"
# helm and kustomize for the chart's tests (crates/operator/tests/helm.rs): helm lints and renders
# deploy/helm/model-validation-operator, kustomize renders deploy/base as `kubectl apply -k` does,
# and the two renderings are compared (cold builds take about 2 min and 40 s).
helm_version="$(sed -n 's/^\s*helm.sh\/helm\/v[0-9]* \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/helm/go.mod" | head -n1)"
build helm "$here/helm" helm.sh/helm/v4/cmd/helm "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version"
log "helm $helm_version ready in $out_dir"
kustomize_version="$(sed -n 's/^\s*sigs.k8s.io\/kustomize\/kustomize\/v5 \(v[0-9.]*\)\( \/\/ indirect\)\?$/\1/p' "$here/kustomize/go.mod" | head -n1)"
build kustomize "$here/kustomize" sigs.k8s.io/kustomize/kustomize/v5 "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$kustomize_version"
log "kustomize $kustomize_version ready in $out_dir"
# cert-manager's controller and CA injector for the chart's certManager mode
# (crates/operator/tests/cert_manager.rs): small mains of ours over the cert-manager library,
# since its cmd modules are not served by the Go module proxy (cold builds take about 3 min),
# and the release's CRDs (deploy/crds of the same module) copied next to them.
cert_manager_version="$(sed -n 's/^\s*\(require \)\?github.com\/cert-manager\/cert-manager \(v[0-9.]*\)\( \/\/ indirect\)\?$/\2/p' "$here/cert-manager/go.mod" | head -n1)"
build cert-manager-controller "$here/cert-manager" ./controller "-s -w"
build cert-manager-cainjector "$here/cert-manager" ./cainjector "-s -w"
copy_cert_manager_crds
log "cert-manager $cert_manager_version (controller, cainjector, CRDs) ready in $out_dir"
if $node; then
	for component in kubelet kube-controller-manager kube-scheduler; do
		build "$component" "$here/kube-apiserver" "k8s.io/kubernetes/cmd/$component" "$k8s_ldflags"
	done
	# Without cgo: the btrfs and devmapper snapshotters need it and the node uses overlayfs.
	containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
	for component in containerd containerd-shim-runc-v2 ctr; do
		build "$component" "$here/containerd" "github.com/containerd/containerd/v2/cmd/$component" \
			"$containerd_ldflags" "no_btrfs,no_devmapper,no_zfs"
	done
	log "kubelet, kube-controller-manager, kube-scheduler $k8s_version and containerd $containerd_version ready in $out_dir"
fi
