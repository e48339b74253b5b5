# linkgate container image: multi-stage, small runtime, non-root.
# Build:  docker build -t linkgate .
# Run:    docker run -p 8080:8080 -p 9090:9090 -v $PWD/config:/etc/linkgate:ro -v linkgate-data:/var/lib/linkgate linkgate
# (not built in this project's CI: no Docker engine there; see README)

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin linkgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/linkgate linkgate \
    && mkdir -p /etc/linkgate /var/lib/linkgate && chown linkgate /var/lib/linkgate
COPY --from=build /src/target/release/linkgate /usr/local/bin/linkgate
USER linkgate
VOLUME ["/etc/linkgate", "/var/lib/linkgate"]
EXPOSE 8080 9090
# The config must listen on 0.0.0.0 inside the container and keep state.path under /var/lib/linkgate.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["linkgate"]
CMD ["serve", "--config", "/etc/linkgate/linkgate.toml"]
