# syntax=docker/dockerfile:1
# Warden worker image. The build stage has a C++ toolchain (native modules, isolated-vm and
# better-sqlite3, compile there when no prebuilt binary can be had), installs everything, compiles
# Warden (`npm ci` runs `prepare`: tsc to build/ and the pre-built workflow bundles), then drops
# the development dependencies. The runtime stage receives only what runs: package.json, bin/,
# build/ and the production node_modules; no TypeScript, no tsx, no sources.

FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Everything but what .dockerignore leaves out (node_modules, build/, state folders).
COPY . .
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# bubblewrap: the OS sandbox of proc.run and stdio MCP servers (it also needs the container to
# allow user namespaces; see deploy/README.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap \
 && rm -rf /var/lib/apt/lists/*
# Owned by root: the worker (user `node`) can read but not modify its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build ./build
COPY bin ./bin
# The state folder must exist, owned by `node`, so a fresh named volume mounted here inherits that owner.
RUN mkdir -p /var/lib/warden && chown node:node /var/lib/warden
ENV WARDEN_STATE_DIR=/var/lib/warden
USER node
# --no-node-snapshot: isolated-vm needs it on Node 20+.
CMD ["node", "--no-node-snapshot", "bin/warden.js", "worker"]
