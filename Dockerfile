# mana-ai: build with dev dependencies, run with production ones only.
# Node 24 is the current LTS line; pin the tag, bump it deliberately.

FROM node:24.11-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24.11-bookworm-slim AS runtime
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
# exec form: node is PID 1's child of nothing, so SIGTERM reaches it directly
CMD ["node", "dist/main.js"]
