# tollgate runtime image: a static binary on an empty base (FROM scratch).
#
# Build it with deploy/build-image.sh, which compiles the binary on the host
# (CGO_ENABLED=0 go build -trimpath -ldflags "-s -w ...") and prepares the
# build context this file expects:
#
#   rootfs/usr/local/bin/tollgate            the binary
#   rootfs/etc/ssl/certs/ca-certificates.crt  CA roots (upstreams are HTTPS)
#   rootfs/etc/passwd, rootfs/etc/group       the non-root user 65532 "tollgate"
#   rootfs/tmp (mode 1777), data/             the data directory, owned by 65532
#
# Nothing is pulled from a registry, so it builds on machines that reach none.
# Where base images can be pulled, deploy/Dockerfile.source builds the same
# image from source in a golang stage instead (see docs/deploy.md).
FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="tollgate" \
      org.opencontainers.image.description="OpenAI-compatible LLM API gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/tollgate/tollgate" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY rootfs/ /
COPY --chown=65532:65532 data/ /data/

# The SQLite ledger and the ledger's spill file live in /data (the spill file
# sits next to the database, or in the working directory with PostgreSQL).
ENV TOLLGATE_LISTEN=:3000 \
    TOLLGATE_DB=/data/tollgate.db \
    TOLLGATE_LOG_FORMAT=json
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
EXPOSE 3000

# The image has no shell or curl: the binary probes its own /healthz (on the
# port of TOLLGATE_LISTEN or PORT).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/tollgate", "healthcheck"]

# tollgate is PID 1 and drains in-flight streams on SIGTERM (docker stop).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]
