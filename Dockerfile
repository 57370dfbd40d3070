# chat-api container image: a release build of the `chat-api` binary on
# debian:bookworm-slim, running as an unprivileged user.
#
#   docker build -t chat-api .
#   docker run --rm -p 8080:8080 \
#     -e JWT_SECRET="$(openssl rand -base64 48)" \
#     -e DATABASE_URL=postgres://user:password@db-host:5432/chat \
#     chat-api
#
# The image runs with APP_ENV=production, so it refuses to start without a JWT key
# (JWT_SECRET of at least 32 bytes, JWT_PUBLIC_KEY_FILE, or JWT_JWKS_URL). Other commands:
# `docker run ... chat-api migrate`, `docker run ... chat-api token --sub <uuid>`.
# docker-compose.yml runs it next to PostgreSQL. crates/chat-api/tests/deployment.rs
# checks this file and the compose file (no Docker engine needed).

# ---------------------------------------------------------------------------
# Builder: the workspace needs Rust >= 1.94 (edition 2024).
# ---------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# 1. Dependencies only. This layer is rebuilt only when a manifest or Cargo.lock
#    changes, not when a source file does: copy the manifests of every workspace
#    member and Cargo.lock, put empty stub sources where the manifests expect
#    their targets (cargo refuses a member without them), and build.
COPY Cargo.toml Cargo.lock ./
COPY crates/chat-domain/Cargo.toml crates/chat-domain/Cargo.toml
COPY crates/chat-infra/Cargo.toml crates/chat-infra/Cargo.toml
COPY crates/chat-api/Cargo.toml crates/chat-api/Cargo.toml
COPY crates/chat-testing/Cargo.toml crates/chat-testing/Cargo.toml
COPY crates/kmeans-trainer/Cargo.toml crates/kmeans-trainer/Cargo.toml
COPY migration/Cargo.toml migration/Cargo.toml
RUN set -eux; \
    mkdir -p crates/chat-domain/src crates/chat-infra/src crates/chat-api/src crates/chat-testing/src crates/kmeans-trainer/src migration/src; \
    touch crates/chat-domain/src/lib.rs crates/chat-infra/src/lib.rs crates/chat-api/src/lib.rs crates/chat-testing/src/lib.rs crates/kmeans-trainer/src/lib.rs migration/src/lib.rs; \
    echo 'fn main() {}' > crates/chat-api/src/main.rs; \
    echo 'fn main() {}' > crates/kmeans-trainer/src/main.rs; \
    cargo build --release --locked -p chat-api

# 2. The real sources. COPY keeps the files' own modification times, which can be
#    older than the stub build above, so touch them or cargo would keep the stubs.
#    (.dockerignore leaves out tests/, target/ and everything else not needed here.)
COPY crates crates
COPY migration migration
RUN set -eux; \
    find crates migration -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p chat-api; \
    install -D -m 0755 target/release/chat-api /out/chat-api

# ---------------------------------------------------------------------------
# Runtime: glibc (the binary links it dynamically), CA certificates for TLS to a
# managed PostgreSQL and to the identity provider (JWT_JWKS_URL; TLS is rustls: no
# OpenSSL), nothing else. SQLite is compiled into the binary.
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

LABEL org.opencontainers.image.title="chat-api" \
      org.opencontainers.image.description="REST service for chats and their k-means results (actix-web, SeaORM)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/chat-api" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# A fixed, unprivileged uid/gid (10001), so volume ownership and Kubernetes'
# runAsNonRoot / runAsUser can rely on it. Its working directory is writable:
# the embedded default DATABASE_URL (sqlite://chat.db?mode=rwc) creates
# ./chat.db there. With PostgreSQL nothing is written to disk.
# ca-certificates is deliberately unpinned (hadolint DL3008): a pinned Debian
# version disappears from the archive at its next update and breaks the build;
# rebuild the image to pick up new CA roots and security fixes.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 10001 chat; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/chat-api --shell /usr/sbin/nologin chat; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/chat-api

COPY --from=builder /out/chat-api /usr/local/bin/chat-api

USER 10001:10001
WORKDIR /var/lib/chat-api

ENV APP_ENV=production \
    BIND_ADDRESS=0.0.0.0:8080 \
    LOG_FORMAT=json

EXPOSE 8080

# Liveness without curl or wget (neither is in the image, and adding one only for
# this would bring a TLS stack and more to patch): bash, which debian-slim always
# has, opens a TCP connection with its /dev/tcp redirection, sends a minimal
# HTTP/1.1 request and succeeds only on a 200 status line. The port follows
# BIND_ADDRESS. Docker's --timeout bounds a server that accepts but never answers.
# docker-compose.yml repeats this command (with $ escaped as $$).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "address=${BIND_ADDRESS:-127.0.0.1:8080}; exec 3<>/dev/tcp/127.0.0.1/${address##*:} && printf 'GET /health/live HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]

# SIGTERM starts a graceful shutdown: stop accepting, finish requests in flight for
# up to SHUTDOWN_GRACE_SECONDS (default 30), close the pool, exit 0. Give the
# container a longer stop timeout than that (docker stop -t, stop_grace_period,
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/chat-api"]
CMD ["serve"]
