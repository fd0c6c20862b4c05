# CrapCoin's image: crapcoin-node, sauron and watercooler in
# /usr/local/bin, the example attacker plugin in
# /usr/local/lib/crapcoin/plugins/, node data under /data.
#
#   docker build -t crapcoin:0.1.0 .
#   docker run --rm --network host -v "$PWD/node1:/data" crapcoin:0.1.0 --tracker http://127.0.0.1:PORT
#   watercooler --runtime docker -x 5 -y 1 --sauron --boss --auto
#
# Three build arguments choose where things come from (docs/docker.md):
#   BUILDER   the Rust toolchain image the build stage compiles in;
#   BASE      the runtime image's base (a small Debian by default);
#   BINARIES  the image the binaries are copied from: the build stage by
#             default; the end-to-end test (tests/docker.rs), which cannot
#             pull images, names an image it imported from the binaries
#             cargo already built, and a BASE it imported too.
ARG BUILDER=rust:1.95-bookworm
ARG BASE=debian:bookworm-slim
ARG BINARIES=build

# --- build: release binaries and the example plugin -------------------------
FROM ${BUILDER} AS build
WORKDIR /src
COPY . .
# One cargo invocation: the plugin links the very crapcoin-core build the
# node loads it into.
RUN cargo build --release --locked -p crapcoin-node -p crapcoin-launcher -p attacker-plugin \
 && install -D -m 0755 -t /usr/local/bin \
        target/release/crapcoin-node target/release/sauron target/release/watercooler \
 && install -D -m 0644 -t /usr/local/lib/crapcoin/plugins target/release/libattacker_plugin.so \
 && mkdir -p /data

# --- the binaries, from the build stage or an image named by BINARIES --------
FROM ${BINARIES} AS binaries

# --- runtime: the binaries, the plugins, a non-root user, /data --------------
FROM ${BASE}
# The binaries link only glibc and libgcc_s, which the base holds (Debian's
# does; the test's imported base holds what `ldd` lists).
COPY --from=binaries /usr/local/bin/crapcoin-node /usr/local/bin/sauron /usr/local/bin/watercooler /usr/local/bin/
COPY --from=binaries /usr/local/lib/crapcoin/plugins/ /usr/local/lib/crapcoin/plugins/
# /data belongs to the image's user; `watercooler --runtime docker`
# bind-mounts each node's directory there and runs as the caller's user.
COPY --from=binaries --chown=10001:10001 /data /data
# Numeric, so no shell or useradd is needed in the base: any base works.
USER 10001:10001
VOLUME ["/data"]
WORKDIR /data
# A node listens on 8333 by default here (host networking: --network host).
EXPOSE 8333 8080
ENV RUST_LOG=info
ENTRYPOINT ["/usr/local/bin/crapcoin-node"]
CMD ["--listen", "0.0.0.0:8333", "--data-dir", "/data"]
