# The shim as an image: a builder stage makes the fully static binary with
# scripts/build-static, and the final stage is FROM scratch with /shim alone.
#
#   docker build -t shim .            (or: podman build -t shim .)
#   docker buildx build --platform linux/amd64,linux/arm64,linux/386 -t REPO/shim --push .
#
# Multi-arch: the builder stage runs on the build machine's own platform
# ($BUILDPLATFORM, no emulation) and cross-compiles for $TARGETARCH with musl
# and rust-lld, so one builder makes every architecture; buildx then makes
# one manifest list of the per-platform images. The builder has to be able to
# pull docker.io/library/rust and reach the Rust dist server and crates.io.
# The platforms that build: docs/platforms.md.
#
# Most users copy the binary into their own image instead:
#
#   COPY --from=shim /shim /shim
#   ENTRYPOINT ["/shim", "--"]
#   CMD ["/app/server"]
#
# scripts/test-packaging and scripts/release build the final stage
# (everything after the last FROM) from locally built binaries instead, since
# no base image can be pulled there.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# Set by buildx (and by buildah/podman build) for each --platform.
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /src
COPY scripts/build-static ./scripts/build-static
# The target's standard library in its own layer, so source edits do not
# download it again.
RUN rustup target add "$(./scripts/build-static --triple "${TARGETARCH}${TARGETVARIANT:+/$TARGETVARIANT}")"
# Only what the build needs (see .dockerignore).
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# build.rs has no git here: the commit comes in as a build argument
# (docker buildx build --build-arg SHIM_COMMIT=$(git rev-parse --short=12 HEAD)).
ARG SHIM_COMMIT=unknown
RUN SHIM_COMMIT="$SHIM_COMMIT" ./scripts/build-static "${TARGETARCH}${TARGETVARIANT:+/$TARGETVARIANT}" && \
    mkdir -p /out && cp target/static/shim-linux-* /out/shim

FROM scratch
LABEL org.opencontainers.image.title="shim" \
      org.opencontainers.image.description="A tiny PID 1 for containers: forwards signals, reaps zombies, stops with a grace period, reports every exit as a JSON line" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /out/shim /shim
ENTRYPOINT ["/shim", "--"]
