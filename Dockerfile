# Build: install every dependency, generate the Prisma client, compile, then
# drop the dev dependencies. Run: the compiled app, its runtime dependencies
# and the migrations (the `migrate` service runs dist/infra/db/migrate.cli.js).
FROM node:20.18-bookworm-slim AS build
WORKDIR /app
# `prisma generate` insists on a schema-engine binary it never runs
# (scripts/prisma-generate.js): any existing file satisfies it.
ENV PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node \
    PRISMA_HIDE_UPDATE_MESSAGE=1 \
    CHECKPOINT_DISABLE=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20.18-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/public ./public
COPY package.json ./
USER node
EXPOSE 3000
# /health/ready: the database and Redis answer (the load balancer and compose wait on it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
