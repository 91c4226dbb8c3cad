# sluice: build on Debian 12, run on slim Debian 12. One image for every
# role: the command picks it (fetch, transform, load, ...).
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc make pkg-config libc6-dev librdkafka-dev libcurl4-openssl-dev \
        libjansson-dev libpq-dev libmicrohttpd-dev libxml2-dev liblua5.4-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY common common
COPY cli cli
COPY producers producers
COPY transformers transformers
COPY loaders loaders
COPY tests/fixtures tests/fixtures
COPY tests/unit tests/unit
# .git stays out of the context (.dockerignore): the version comes as a
# build argument (docker-compose.yml passes SLUICE_VERSION), into
# `sluice --version`, the build-info gauge and the label below
ARG VERSION=unknown
RUN make -j"$(nproc)" SLUICE_VERSION="$VERSION" build/sluice

FROM debian:12-slim
ARG VERSION=unknown
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.version="$VERSION"
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka1 libcurl4 libjansson4 libpq5 libmicrohttpd12 libxml2 liblua5.4-0 \
        ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent sluice \
    && install -d -o sluice /var/lib/sluice/topics
COPY --from=build /src/build/sluice /usr/local/bin/sluice
COPY producers/sources /usr/share/sluice/sources
COPY transformers/maps /usr/share/sluice/maps
COPY schemas /usr/share/sluice/schemas
WORKDIR /usr/share/sluice
# /metrics, /healthz, /readyz of a worker given SLUICE_HTTP_PORT=9100 (as
# docker-compose.yml does)
EXPOSE 9100
USER sluice
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/sluice"]
CMD ["--help"]
