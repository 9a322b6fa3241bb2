# The shim as an image: a builder stage makes the fully static binary with
# scripts/build-static, and the final stage is FROM scratch with /shim alone.
#
#   docker build -t shim .            (or: podman build -t shim .)
#   docker run --rm shim /app ...     (any static program in the image)
#
# Most users copy the binary into their own image instead:
#
#   COPY --from=shim /shim /shim
#   ENTRYPOINT ["/shim", "--"]
#   CMD ["/app/server"]
#
# scripts/test-packaging builds the final stage (everything after the last
# FROM) from a locally built binary, since no base image can be pulled there.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# musl is preferred; scripts/build-static falls back to glibc +crt-static if
# the musl target cannot be installed. In its own layer, so source edits do
# not download it again.
RUN rustup target add x86_64-unknown-linux-musl || true
WORKDIR /src
# Only what the build needs (see .dockerignore).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY scripts/build-static ./scripts/build-static
RUN ./scripts/build-static && ./target/static/shim --version

FROM scratch
LABEL org.opencontainers.image.title="shim" \
      org.opencontainers.image.description="A tiny PID 1 for containers: forwards signals, reaps zombies, stops with a grace period, reports every exit as a JSON line" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=build /src/target/static/shim /shim
ENTRYPOINT ["/shim", "--"]
