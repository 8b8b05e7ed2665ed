# The verification agent injected into pods: the model-signing binary as entrypoint.
#   docker build -f deploy/docker/agent.Dockerfile -t ghcr.io/model-validation-operator/model-signing:v0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p model-signing-cli --bin model-signing

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/model-signing /usr/local/bin/model-signing
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/model-signing"]
