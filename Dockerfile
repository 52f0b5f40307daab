# One build, one image per app: `docker build --target api .` / `--target worker`.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node bundles its CPU binaries; skip its install script, which would download GPU extras we do not use.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

FROM runtime AS worker
# TFJS_NODE_GPU=1 adds @tensorflow/tfjs-node-gpu, the native binding initBackend prefers. It stays out of
# package.json because it cannot be installed on the dev and CI machines. Its libtensorflow also needs the
# CUDA 11.2 / cuDNN 8 runtime libraries, which this slim base lacks: without them TensorFlow runs natively
# on the CPU; for the GPU, build from an nvidia/cuda cudnn8 runtime base with Node 20 added.
ARG TFJS_NODE_GPU=0
RUN if [ "$TFJS_NODE_GPU" = "1" ]; then \
      ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save --omit=dev @tensorflow/tfjs-node-gpu@4.22.0 && npm cache clean --force; \
    fi
USER node
CMD ["node", "dist/apps/worker/apps/worker/src/main"]

FROM runtime AS api
USER node
EXPOSE 3000
# A 500-candidate score allocates ~0.2 MB: fixed 64 MB semi-spaces scavenge rarely and keep the old generation room to
# promote into; no memory reducer pausing the inference threads (docs/serving.md, The tail).
CMD ["node", "--max-semi-space-size=64", "--min-semi-space-size=64", "--no-memory-reducer", "dist/apps/api/apps/api/src/main"]
