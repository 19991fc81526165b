# syntax=docker/dockerfile:1.7
# codemill CUDA image: training (torchrun / DeepSpeed, flash-attention), generation and
# GPU serving (vLLM) on A100s.
#
#   docker build -f images/cuda.Dockerfile -t ghcr.io/codemill/codemill-cuda:0.1.0 .   (make images)
#
# Why it is shaped like this:
# - One environment for training, generation and serving: `codemill serve --backend vllm`
#   runs vLLM in-process. vLLM 0.30.0 (the newest built for torch==2.13.0) cannot live with
#   two pins of constraints.txt (fastapi, numpy), so the build uses constraints.txt minus
#   those two lines plus images/requirements-cuda.txt, which re-pins them and adds the CUDA
#   stack. Every other version is constraints.txt's.
# - torch==2.13.0 from PyPI is the CUDA 13.0 build and brings the CUDA runtime as wheels,
#   vLLM's wheels are built against that same torch, and the driver is injected by the
#   NVIDIA container toolkit. So the runtime stage needs no CUDA base image: it is the same
#   python slim image as the CPU image.
# - flash-attn and DeepSpeed's fused ops are compiled here, in the `build` stage, which is
#   the only stage with nvcc and a C++ toolchain; `runtime` copies the finished venv.

FROM python:3.11.14-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# nvcc and CUDA headers of the same CUDA release torch was built with (13.0), from NVIDIA's
# Debian 12 repository; the full python image already has gcc/g++ and curl.
ARG CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64
RUN curl -fsSLo /tmp/cuda-keyring.deb "${CUDA_REPO}/cuda-keyring_1.1-1_all.deb" \
    && dpkg -i /tmp/cuda-keyring.deb && rm -f /tmp/cuda-keyring.deb \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
       cuda-nvcc-13-0 cuda-cudart-dev-13-0 cuda-nvrtc-dev-13-0 cuda-profiler-api-13-0 \
       libcublas-dev-13-0 libcurand-dev-13-0 libcusparse-dev-13-0 libcusolver-dev-13-0 \
    && rm -rf /var/lib/apt/lists/*
ENV CUDA_HOME=/usr/local/cuda-13.0 \
    PATH=/usr/local/cuda-13.0/bin:$PATH \
    TORCH_CUDA_ARCH_LIST="8.0;9.0" \
    MAX_JOBS=8
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY images/requirements-cuda.txt images/
# constraints.txt without the two pins vLLM cannot live with (re-pinned by the CUDA lock).
RUN grep -viE '^(fastapi|numpy)==' constraints.txt > constraints-cuda.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints-cuda.txt -c images/requirements-cuda.txt \
       torch==2.13.0 einops hjson msgpack ninja py-cpuinfo psutil pydantic packaging wheel
# Built against the torch above (no build isolation); DS_BUILD_* precompiles the ops
# training uses, so nothing is JIT-compiled at run time (the runtime stage has no nvcc).
RUN FLASH_ATTENTION_FORCE_BUILD=TRUE /opt/venv/bin/pip install --no-cache-dir --no-build-isolation \
       -c constraints-cuda.txt -c images/requirements-cuda.txt flash-attn \
    && DS_BUILD_FUSED_ADAM=1 DS_BUILD_CPU_ADAM=1 DS_BUILD_UTILS=1 \
       /opt/venv/bin/pip install --no-cache-dir --no-build-isolation \
       -c constraints-cuda.txt -c images/requirements-cuda.txt deepspeed
COPY codemill/ codemill/
COPY components/ components/
COPY pipelines/ pipelines/
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints-cuda.txt -c images/requirements-cuda.txt \
       . vllm \
    && /opt/venv/bin/pip check

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="codemill-cuda" \
      org.opencontainers.image.source="https://github.com/codemill/codemill" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 codemill \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/codemill \
       --shell /usr/sbin/nologin codemill
COPY --from=build /opt/venv /opt/venv
COPY pipelines/compiled/ /opt/codemill/pipelines/compiled/
# NVIDIA_* tell the container toolkit to mount the driver (the nvidia/cuda images set the same).
ENV PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/tmp/hf \
    TRITON_CACHE_DIR=/tmp/triton \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/home/codemill
WORKDIR /opt/codemill
USER 10001:10001
EXPOSE 8000
# No Docker HEALTHCHECK: training and generation are batch steps; serving is probed by
# the chart's startup/readiness/liveness probes.
HEALTHCHECK NONE
CMD ["codemill", "--help"]
