# syntax=docker/dockerfile:1
#
# protogate and the bundled example backend.
#
#   docker build -t protogate .                                   # the gateway (last stage)
#   docker build --target library -t protogate-library .          # the example gRPC backend
#   docker run --rm -p 8080:8080 protogate --upstream http://host.docker.internal:50051
#
# docker-compose.yml builds both stages and wires them together.

# ---- builder: both release binaries -------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# Everything the manifest names must exist (cargo checks every declared target, including the
# [[bench]]); tests/ is auto-discovered and left out. build.rs compiles the example protos with
# protox (pure Rust), so no protoc is needed.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY examples ./examples
COPY benches ./benches
COPY descriptors ./descriptors
# BuildKit cache mounts keep the registry and target/ between builds; the binaries are copied
# out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin protogate --example library_server \
 && mkdir -p /out \
 && cp target/release/protogate target/release/examples/library_server /out/

# ---- runtime base: slim Debian, non-root user ------------------------------------------------
FROM debian:bookworm-slim AS runtime-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 protogate \
 && useradd --system --uid 10001 --gid protogate --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin protogate
WORKDIR /app

# ---- library: the example gRPC backend (examples/library_server) -----------------------------
FROM runtime-base AS library
COPY --from=builder /out/library_server /usr/local/bin/library_server
USER 10001:10001
EXPOSE 50051
# library_server stops on Ctrl-C only (no SIGTERM handler, and as PID 1 SIGTERM would be
# ignored), so `docker stop` sends SIGINT.
STOPSIGNAL SIGINT
ENTRYPOINT ["library_server", "--listen", "0.0.0.0:50051"]

# ---- gateway: protogate (the default, last stage) --------------------------------------------
FROM runtime-base AS gateway
COPY --from=builder /out/protogate /usr/local/bin/protogate
# `serve` reads ./descriptors and ./routes.yaml by default (relative to WORKDIR /app).
COPY descriptors ./descriptors
COPY routes.yaml ./routes.yaml
# Numeric, so Kubernetes' runAsNonRoot can verify it; deploy/kubernetes runs as the same uid
# (runAsUser: 10001, checked by ci/validate-kubernetes.sh) with a read-only root filesystem.
USER 10001:10001
EXPOSE 8080
# Extra flags (e.g. --upstream http://library:50051) are appended by `docker run ... <flags>`
# or compose's `command:`; every flag is also a PROTOGATE_* environment variable.
ENTRYPOINT ["protogate", "serve", "--listen", "0.0.0.0:8080"]
