# majordome: multi-stage build; the runtime image holds production dependencies and the built code only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
# Dev dependencies build the code; the optional crypto stand-in means no native download is needed.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY handlers ./handlers
COPY bench ./bench
COPY test/support ./test/support
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/handlers ./dist/handlers
COPY package.json ./
COPY packages ./packages
COPY bin ./bin
COPY policies ./policies
COPY config.example.yml ./
USER node
EXPOSE 9180
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:9180/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["/app/bin/majordome"]
CMD ["run", "/app/config.yml"]
