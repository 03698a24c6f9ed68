# Tessera container image: a static-ish release binary on a slim Debian base, non-root.
#   docker build -t tessera .
#   docker run -p 8080:8080 -v tessera-keys:/var/lib/tessera/keys \
#     -v $PWD/config/demo.toml:/etc/tessera/tessera.toml:ro \
#     -e TESSERA__SERVER__LISTEN=0.0.0.0:8080 tessera
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
COPY tests ./tests
COPY crates ./crates
COPY examples/shop ./examples/shop
RUN cargo build --release --locked -p tessera --bin tessera

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/tessera tessera \
    && mkdir -p /var/lib/tessera/keys /etc/tessera \
    && chown -R tessera /var/lib/tessera && chmod 700 /var/lib/tessera/keys
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY config/example.toml /etc/tessera/example.toml
USER tessera
WORKDIR /var/lib/tessera
ENV TESSERA_CONFIG=/etc/tessera/tessera.toml \
    TESSERA__KEYS__DIR=/var/lib/tessera/keys
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
