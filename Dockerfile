# syntax=docker/dockerfile:1
#
# The peripety image: ONE image, two entry points.
#
#   docker run IMAGE agent --kubernetes …        the node agent (DaemonSet)
#   docker run IMAGE controller …                the controller (Deployment)
#   docker run IMAGE print-default-config         any other `peripety` command
#
# The code runs as JavaScript compiled from src/ by hack/build-dist.mjs in
# the build stage (Node's own type stripper, no compiler: docs/packaging.md
# "Compiled JavaScript"): running the .ts sources would make every process
# load Node's TypeScript stripper, ≈18 MiB more resident memory per node
# agent (issue 14). The image carries dist/ and src/ (bin/peripety runs dist/
# only while its recorded hash matches src/; PERIPETY_ENTRY=dist below makes
# a mismatch an error instead of a silent fallback to src/), package.json
# (its "type": "module" makes Node load them as ES modules), the production
# dependencies and the N-API addons built from src/native/*.c.
#
# Stage 1 (build) compiles the addons with the C compiler of the full Debian
# Node image and installs the production dependencies only (`npm ci
# --omit=dev`; the package's own install script runs hack/build-native.mjs,
# which finds the N-API headers next to the image's node). Stage 2 (runtime)
# is the slim image of the SAME Node version and the SAME Debian release, so
# the addons find the glibc they were linked against.
#
# User: the image runs as the unprivileged `node` user (uid/gid 1000, numeric
# so that `runAsNonRoot` can be verified by the kubelet). The controller runs
# like this. The agent reads /dev/kmsg and writes its hostPath state
# directory, which needs root on the node: the Helm chart overrides the user
# in the agent's securityContext (runAsUser: 0 with only the capabilities it
# needs); nothing in the image is writable by uid 1000.
#
# NODE_VERSION must equal NODE_VERSION in hack/run (test/unit/packaging
# checks it): tests and the image run the same Node.
#
# The base images are build arguments so that a machine with no access to
# Docker Hub can pass local stand-ins (hack/image.sh builds them from a Debian
# mirror and the npm registry); by default they are the official tags above.
ARG NODE_VERSION=24.21.0
ARG DEBIAN_RELEASE=bookworm
ARG BUILD_IMAGE=node:${NODE_VERSION}-${DEBIAN_RELEASE}
ARG RUNTIME_IMAGE=node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
# Only what `npm ci` needs: the lock file pins every dependency, and the
# package's install script builds src/native/*.c into build/*.node.
COPY package.json package-lock.json ./
COPY hack/build-native.mjs hack/build-native.mjs
COPY src/native/ src/native/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund \
 && test -n "$(ls build/*.node)" \
 && node -e 'for (const f of require("node:fs").readdirSync("build")) require("./build/" + f); console.log("addons load:", require("node:fs").readdirSync("build").join(" "))'
# The JavaScript the image runs: src/ → dist/ (and dist/.src-hash).
COPY bin/entry.mjs bin/entry.mjs
COPY hack/build-dist.mjs hack/build-dist.mjs
COPY hack/lib/dist-rewrite.mjs hack/lib/dist-rewrite.mjs
COPY src/ src/
RUN node hack/build-dist.mjs && node hack/build-dist.mjs --check

FROM ${RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production
# run dist/ or fail: never the .ts sources by accident (bin/entry.mjs)
ENV PERIPETY_ENTRY=dist
WORKDIR /app
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/build/ build/
COPY package.json package-lock.json ./
COPY bin/ bin/
COPY src/ src/
COPY --from=build /app/dist/ dist/
# The entry point must load: imports resolve, dist/ is a build of the src/
# beside it, the production dependencies are enough.
RUN node bin/peripety --version && node bin/peripety print-default-config >/dev/null \
 && node -e 'for (const f of require("node:fs").readdirSync("build")) require("./build/" + f)'

LABEL org.opencontainers.image.title="peripety" \
      org.opencontainers.image.description="Kubernetes-native storage event system: node agent and controller" \
      org.opencontainers.image.licenses="Apache-2.0"

# The agent's default API/metrics port (the chart sets the real listen address).
EXPOSE 9477
USER 1000:1000
ENTRYPOINT ["node", "/app/bin/peripety"]
CMD ["help"]
