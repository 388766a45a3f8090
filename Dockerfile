# The livecov server. Build from the repository root:
#   docker build -t livecov .
# and run it on a volume (SQLite) or with DATABASE_URL=postgres://… (docker-compose.yml).
# The image also carries the livecov executable for building services: see
# examples/greeter/Dockerfile.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p livecov

FROM debian:bookworm-slim
COPY --from=build /src/target/release/livecov /usr/local/bin/livecov
RUN useradd --system --uid 10001 --home-dir /data --create-home livecov
USER livecov
WORKDIR /data
VOLUME /data
ENV LIVECOV_LISTEN=0.0.0.0:7777 \
    DATABASE_URL=sqlite:///data/livecov.db
EXPOSE 7777
ENTRYPOINT ["livecov"]
CMD ["server"]
