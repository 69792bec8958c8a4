# syntax=docker/dockerfile:1
#
# hearth in a container: a Rust build stage, then a small Debian runtime
# with only the binary, running as an unprivileged user.
#
#   docker build -t hearth .
#   docker run -d -p 8080:8080 -v hearth-data:/data hearth
#
# Configure with HEARTH_* variables (see `docker run hearth config default`)
# or mount a file and set HEARTH_CONFIG. Admin commands run inside the
# container against the live server through its admin socket:
#   docker exec <container> hearth user list

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directory persist across builds in BuildKit caches.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin hearth \
    && install -D -m 0755 target/release/hearth /out/hearth

FROM debian:bookworm-slim
# No curl or shell tools are needed: `hearth healthcheck` asks /healthz.
RUN groupadd --system --gid 10001 hearth \
    && useradd --system --uid 10001 --gid hearth --home-dir /data --shell /usr/sbin/nologin hearth \
    && install -d -o hearth -g hearth -m 0700 /data
COPY --from=build /out/hearth /usr/local/bin/hearth
USER hearth:hearth
WORKDIR /data
ENV HEARTH_LISTEN=0.0.0.0:8080 \
    HEARTH_DATA=/data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["hearth", "healthcheck"]
ENTRYPOINT ["hearth"]
CMD ["serve"]
