# syntax=docker/dockerfile:1
# Warden worker image. Dependencies are installed in a separate stage that has a C++ toolchain,
# in case a prebuilt binary of a native module (isolated-vm, better-sqlite3) cannot be downloaded;
# the runtime stage only receives the resulting node_modules.
# Plain `npm ci`, not `--omit=dev`: the TypeScript sources run through tsx at runtime.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# bubblewrap: the OS sandbox of proc.run and stdio MCP servers (it also needs the container to
# allow user namespaces; see deploy/README.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deps /app/node_modules ./node_modules
# Sources stay owned by root: the worker (user `node`) can read but not modify its own code.
COPY . .
# The state folder must exist, owned by `node`, so a fresh named volume mounted here inherits that owner.
RUN mkdir -p /var/lib/warden && chown node:node /var/lib/warden
ENV WARDEN_STATE_DIR=/var/lib/warden
USER node
# --no-node-snapshot: isolated-vm needs it on Node 20+.
CMD ["node", "--no-node-snapshot", "bin/warden.js", "worker"]
