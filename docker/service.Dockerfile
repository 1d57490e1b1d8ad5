# syntax=docker/dockerfile:1
# vaegan service: serves a model bundle from /models over HTTP on port 8000 with ONNX Runtime.
#
# CUDA pairing. onnxruntime-gpu 1.31.1 (the newest on PyPI, pinned in docker/constraints.txt) is
# built with CUDA 13.0 and cuDNN 9 and, unlike torch, loads them from the system: the base is
# nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 (CUDA 13.0.1 runtime libraries, cuDNN 9.13, Python
# 3.12 from Ubuntu 24.04). The trainer image uses the same CUDA 13.0 with torch 2.13.0+cu130, so one
# host driver (>= 580) runs both. No torch here: only the [serve-gpu] extra is installed, and the
# service imports nothing of model_core but the torch-free model_core.bundle and model_core.preprocessing.
# docker-compose.cpu.yml rebuilds this file on ubuntu:24.04 with the [serve] extra (onnxruntime).
ARG BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

# --- builder: a virtual environment with the project's serving extra ---------------------------
FROM ${BASE_IMAGE} AS builder
ARG SERVE_EXTRA=serve-gpu
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

WORKDIR /app
COPY docker/constraints.txt /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY model_core/ model_core/
COPY service/ service/
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt --editable ".[${SERVE_EXTRA}]" \
    && python -m compileall -q /app/model_core /app/service

# --- final: Python, the virtual environment and the source; no compilers, no pip cache ----------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="vaegan-service" \
      org.opencontainers.image.description="REST inference service for VAE-GAN model bundles on ONNX Runtime"
ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VAEGAN_MODELS_DIR=/models

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 vaegan \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin vaegan \
    && mkdir -p /models

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Ready means verified, loaded and warmed up (503 before that and once SIGTERM arrives). The image
# has no curl: Python's urllib raises, and so exits non-zero, on any answer but 2xx.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

CMD ["vaegan-serve", "--host", "0.0.0.0", "--port", "8000"]
