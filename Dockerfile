# syntax=docker/dockerfile:1
# The druppie image: `druppie serve` in the cluster, deployed by the
# `druppie` building block (bouwblokken/druppie.md).
#   docker build --build-arg DRUPPIE_COMMIT=$(git rev-parse --short=12 HEAD) \
#     -t registry.example.org/platform/druppie:0.1.0 .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# `druppie --version` names this commit (the build context has no .git).
ARG DRUPPIE_COMMIT=unknown
ENV DRUPPIE_COMMIT=${DRUPPIE_COMMIT}
# The registry and target caches survive between builds; the binary is
# copied out of the cache so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked \
 && install -m 0755 target/dist/druppie /usr/local/bin/druppie

FROM debian:bookworm-slim
# druppie fetches and pushes with the git CLI (HTTPS through a credential
# helper, or SSH); ca-certificates verify the forge's TLS. Versions follow
# bookworm's point and security releases, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
 && rm -rf /var/lib/apt/lists/*
# UID and GID 10001, as the block's securityContext expects; the home
# directory is the working directory and holds the repo cache.
RUN groupadd --gid 10001 druppie \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/druppie \
      --no-create-home --shell /usr/sbin/nologin druppie \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/druppie
COPY --from=build /usr/local/bin/druppie /usr/local/bin/druppie
USER 10001:10001
WORKDIR /var/lib/druppie
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/druppie"]
CMD ["serve"]
