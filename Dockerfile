# Touchline node image. Build context: the repository root (see .dockerignore).
#   docker build -t touchline-node .
#   docker run -e NATS_URL=nats://nats:4222 -p 3000:3000 touchline-node
# compose.yaml builds it for the scalable `node` service.

ARG BUN_VERSION=1.4.5

# Dependencies only, from package.json and its lock file (npm's package-lock.json, which bun install
# migrates); no dev dependencies.
FROM oven/bun:${BUN_VERSION} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN bun install --production

FROM oven/bun:${BUN_VERSION}
WORKDIR /app
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# The image's unprivileged user; the node needs no root.
USER bun
EXPOSE 3000
# /readyz is 200 once the node has joined the cluster, 503 while it drains. bun is the only tool the
# image is sure to have, so it does the probe.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM makes the node drain (hand its matches over, close its streams); compose gives it
# stop_grace_period for that.
STOPSIGNAL SIGTERM
CMD ["bun", "run", "src/main.ts"]
