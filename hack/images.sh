#!/usr/bin/env bash
# The operator's and the agent's container images, without a container engine (no daemon, no
# base image pulled): the release binaries, the glibc they load from this machine's Debian
# packages, and a non-root user (65532), as OCI image layout archives in target/images/.
#   REGISTRY=ghcr.io/model-validation-operator bash hack/images.sh
# Reproducible: the same commit and binaries give the same digests (SOURCE_DATE_EPOCH defaults
# to the commit's time). Load with `docker load -i`, `podman load -i`, push with
# `skopeo copy --preserve-digests oci-archive:target/images/agent.tar docker://REGISTRY/model-signing:TAG`
# (--preserve-digests: otherwise skopeo compresses the layer and the pushed digest differs), or import
# into containerd with `ctr images import`.
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${REGISTRY:-ghcr.io/model-validation-operator}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${TAG:-v$VERSION}
SOURCE=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -1)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
OUT=${OUT:-target/images}
mkdir -p "$OUT"
tool=(cargo run --quiet --locked -p test-cluster --)
# The operator reads registries over TLS (models in image volumes): it gets this machine's CA
# bundle (Debian's ca-certificates), where rustls-platform-verifier looks for it.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -r $CA_BUNDLE ]] || { echo "images: $CA_BUNDLE not found: apt-get install ca-certificates" >&2; exit 1; }
for image in "model-signing:agent" "model-validation-operator:operator"; do
    binary=${image%%:*}
    name=${image#*:}
    repository=$([[ $name == agent ]] && echo model-signing || echo operator)
    extra=()
    [[ $name == operator ]] && extra=(--file "$CA_BUNDLE:$CA_BUNDLE")
    "${tool[@]}" image \
        --binary "target/release/$binary" \
        --path "/usr/local/bin/$binary" \
        "${extra[@]}" \
        --reference "$REGISTRY/$repository:$TAG" \
        --label "org.opencontainers.image.source=$SOURCE" \
        --label "org.opencontainers.image.version=$VERSION" \
        --label "org.opencontainers.image.revision=$REVISION" \
        --label "org.opencontainers.image.title=$binary" \
        --out "$OUT/$name.tar"
done
