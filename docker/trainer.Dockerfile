# syntax=docker/dockerfile:1
# vaegan trainer: trains the VAE-GAN and exports a verified model bundle to /models.
#
# CUDA pairing. pyproject.toml pins torch 2.13.x; we install the official torch==2.13.0 CUDA 13.0
# wheel (index cu130). That wheel brings its own CUDA 13.0 runtime, cuBLAS and cuDNN 9 as nvidia-*
# wheels, so the base only needs the CUDA 13.0 container setup (NVIDIA_REQUIRE_CUDA=cuda>=13.0, the
# driver hooks of the NVIDIA Container Toolkit): nvidia/cuda:13.0.1-base, Ubuntu 24.04 (Python 3.12).
# A cudnn-runtime base would ship a second copy of the same libraries. The service image uses CUDA
# 13.0.1 + cuDNN 9 as well (onnxruntime-gpu 1.31 is built for CUDA 13), so one host driver
# (>= 580, CUDA 13.0) runs both. docker-compose.cpu.yml rebuilds this file on ubuntu:24.04 with the
# CPU wheel (index cpu).
ARG BASE_IMAGE=nvidia/cuda:13.0.1-base-ubuntu24.04

# --- builder: a virtual environment with torch and the project's [train] extra -----------------
FROM ${BASE_IMAGE} AS builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The Ubuntu archive keeps only the latest patched build of each package, so a version pin here
# would break the build at the next security update; the base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

# torch first, from the PyTorch index only (no mixing with PyPI): its own layer, cached while the
# project changes.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

# The project, installed in development mode from /app: trainer/mnist.py reads the embedded digits
# from data/mnist beside the package, so the source tree and the data travel together. The
# [tensorboard] extra serves vaegan-train --tensorboard and compose's tensorboard profile.
WORKDIR /app
COPY docker/constraints.txt /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY model_core/ model_core/
COPY trainer/ trainer/
COPY data/mnist/ data/mnist/
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt --editable ".[train,tensorboard]" \
    && python -m compileall -q /app/model_core /app/trainer

# --- final: Python, the virtual environment and the source; no compilers, no pip cache ----------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="vaegan-trainer" \
      org.opencontainers.image.description="Trains the VAE-GAN (Larsen et al. 2016) and exports an ONNX model bundle"
ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# ca-certificates: --dataset mnist / fashion-mnist download their IDX files over HTTPS. An empty
# named volume mounted on /models, /data or /runs takes its owner from the image, so the non-root
# trainer can write its data cache, its run folder and the bundles.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 vaegan \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin vaegan \
    && mkdir -p /models /data /runs \
    && chown 10001:10001 /models /data /runs

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

WORKDIR /app
USER 10001:10001

# The compose file passes the same command with its settings; this default reproduces the seed run.
CMD ["vaegan-train", "--preset", "mnist32", "--dataset", "mnist", "--recipe", "default", "--epochs", "20", "--device", "cuda", \
     "--data-dir", "/data", "--out", "/runs/mnist", "--export-to", "/models", "--name", "mnist"]
