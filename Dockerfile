# syntax=docker/dockerfile:1
#
# Portal: one image, one binary. Every pod runs a subcommand of it:
#   portal identity | portal subscription | portal invitation | portal migrate --service <svc>
#
#   docker build -t portal:dev .
#
# Build stage: the official Rust image, pinned. BuildKit cache mounts keep the cargo
# registry, git checkouts and target/ between builds; the binary is copied out of the
# cached target/ because cache mounts are not part of the image.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,id=portal-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=portal-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=portal-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p portal \
 && install -D -m 0755 target/release/portal /out/portal

# Root filesystem stage: the same script CI uses (image/rootfs), so this image and the one
# CI builds with mmdebstrap, umoci and runc have the same contents: Debian bookworm's
# base-files, libc6, libgcc-s1 and netbase extracted without a shell or package manager,
# a passwd naming user 65532, and the stripped binary.
FROM debian:12.12-slim AS rootfs
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends mmdebstrap ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY image/rootfs /usr/local/bin/portal-rootfs
COPY --from=builder /out/portal /out/portal
RUN portal-rootfs /rootfs /out/portal

# Runtime stage: nothing but that root filesystem, run as an unprivileged user (65532).
# The process writes nothing to disk but /tmp, so the pod runs with a read-only root.
FROM scratch
LABEL org.opencontainers.image.title="portal" \
      org.opencontainers.image.description="Portal gRPC suite: identity, subscription and invitation services" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=rootfs /rootfs/ /
USER 65532:65532
# 50051: gRPC (PORTAL_LISTEN_ADDR); 9090: Prometheus /metrics (PORTAL_ADMIN_ADDR).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/portal"]
