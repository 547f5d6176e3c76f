# syntax=docker/dockerfile:1
# Stage 1: compile calsync into one binary. `deno compile` downloads its runtime base (denort)
# from Deno's release server, so this stage needs that server reachable (or DENORT_BIN set).
# Only the daemon's own code is copied: the fakes (testkit/) and the drills never reach the binary.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ./
COPY src ./src
COPY migrations ./migrations
COPY deploy/compile.ts ./deploy/compile.ts
RUN deno install --frozen && deno task compile

# Stage 2: a slim runtime with only the binary and CA certificates, run as an unprivileged user.
# No curl: the health check is the binary itself.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin calsync
COPY --from=build /src/dist/calsync /usr/local/bin/calsync
USER 10001:10001
ENV PORT=8080 LOG_LEVEL=info
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/calsync", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/calsync"]
CMD ["serve"]
