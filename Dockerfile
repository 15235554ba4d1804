# safe-scp's image: `safe-scp` on PATH with ssh2's native crypto binding, for the CI/CD components (their default
# `image`) and for `docker run`. Built and pushed at each release tag by the `release-image` job of .gitlab-ci.yml.
#   docker build -t safe-scp .
#   docker run --rm -e SSH_PRIVATE_KEY -e SSH_KNOWN_HOSTS -v "$PWD:/work" -w /work safe-scp safe-scp -r dist/ deploy@web1:/srv/app/
ARG NODE_MAJOR=22

# Build: the toolchain (python3, make, g++ are in the full node image) compiles ssh2's binding.
FROM node:${NODE_MAJOR}-bookworm AS build
WORKDIR /src
# node-gyp uses the headers installed beside node instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY src/ src/
COPY templates/ templates/
COPY README.md LICENSE ./
RUN npm run build && npm pack --ignore-scripts --silent && mv safe-scp-*.tgz /tmp/safe-scp.tgz
# The published file set (npm pack), with the production dependencies the lockfile pins; package scripts run,
# so ssh2 and cpu-features build their bindings. test/integration/image-recipe.test.ts runs these same steps.
WORKDIR /opt/safe-scp
RUN tar -xzf /tmp/safe-scp.tgz --strip-components=1 \
 && cp /src/package-lock.json . \
 && npm ci --omit=dev --no-audit --no-fund \
 && rm package-lock.json \
 && chmod 755 dist/safe-scp.mjs \
 && node -e "if (!require('/opt/safe-scp/node_modules/ssh2/lib/protocol/crypto.js').bindingAvailable) { console.error('ssh2 native binding missing'); process.exit(1); }"

# Runtime: slim node, no compiler, no npm; runs as the unprivileged `node` user.
FROM node:${NODE_MAJOR}-bookworm-slim
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && ln -s /opt/safe-scp/dist/safe-scp.mjs /usr/local/bin/safe-scp
COPY --from=build /opt/safe-scp /opt/safe-scp
# Fails the build if the binding does not load on the runtime base (same Node major as the build stage).
RUN safe-scp --version \
 && node -e "if (!require('/opt/safe-scp/node_modules/ssh2/lib/protocol/crypto.js').bindingAvailable) { console.error('ssh2 native binding missing'); process.exit(1); }"
USER node
# No ENTRYPOINT: GitLab runs its job script through the image's shell.
CMD ["safe-scp", "--help"]
