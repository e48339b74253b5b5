# linkgate container image: multi-stage, small runtime, non-root.
# Build:  docker build -t linkgate .
# Run:    docker run -p 8080:8080 -p 9090:9090 -v $PWD/config:/etc/linkgate:ro -v linkgate-data:/var/lib/linkgate linkgate
# Two instances on Redis:  docker compose -f config/compose.yaml up --build   (see docs/operations.md)
# (not built in this project's CI: no Docker engine there; see docs/operations.md)

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change of our sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > benches/hot_path.rs \
    && cargo build --release --locked --bin linkgate && rm -rf src benches
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin linkgate && strip target/release/linkgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/linkgate linkgate \
    && mkdir -p /etc/linkgate /var/lib/linkgate && chown linkgate /var/lib/linkgate
COPY --from=build /src/target/release/linkgate /usr/local/bin/linkgate
USER linkgate
WORKDIR /var/lib/linkgate
# /etc/linkgate: the config (read-only is fine); /var/lib/linkgate: the embedded store and the
# upgrade socket. A dir store's folder is mounted where its `root` says.
VOLUME ["/etc/linkgate", "/var/lib/linkgate"]
EXPOSE 8080 9090
# The config must listen on 0.0.0.0 inside the container and keep state.path under /var/lib/linkgate.
# /healthz: the process answers (liveness). Orchestrators that route traffic should use /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
# SIGTERM: exits as soon as no download runs, at the latest after server.grace_period_seconds
# (give `docker stop -t` more than that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["linkgate"]
CMD ["serve", "--config", "/etc/linkgate/linkgate.toml"]
