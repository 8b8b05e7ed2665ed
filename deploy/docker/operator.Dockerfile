# The operator image. Build from the repository root:
#   docker build -f deploy/docker/operator.Dockerfile -t ghcr.io/model-validation-operator/operator:v0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p model-validation-operator --bin model-validation-operator

# glibc, no shell, non-root (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/model-validation-operator /usr/local/bin/model-validation-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/model-validation-operator"]
