# mana-ai: build with dev dependencies, run with production ones only.
# Node 26 is the active LTS line since October 2026 (24 is in maintenance);
# the tag is pinned to a release and bumped deliberately. The engines field
# stays at >= 20.18 for people who run from source.

FROM node:26.10.0-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsc, then esbuild bundles dist/main.js into one file (a faster start; docs/dependencies.md)
RUN npm run build

FROM node:26.10.0-trixie-slim AS runtime
ENV NODE_ENV=production \
    PORT=3067 \
    TZ=Europe/Berlin
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# sql/ is the schema; the daemon applies pending files at start.
COPY sql ./sql
# the official image ships the unprivileged `node` user
USER node
EXPOSE 3067
# No curl in the image: Node itself asks /health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3067)+'/health').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# exec form: node is PID 1 itself (no shell in between), so SIGTERM reaches it
# The same command as `npm start`: a 2 MB young generation keeps the garbage
# of the schedule load from inflating RSS (docs/performance.md: 1M missions
# scheduled in < 200 MB of the 256 MB the compose file gives the service).
CMD ["node", "--max-semi-space-size=2", "dist/main.js"]
