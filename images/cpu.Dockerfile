# syntax=docker/dockerfile:1.7
# codemill CPU image: the data stages, sandboxed evaluation, CPU serving, the MLflow
# tracking server and the pipeline-upload Job all run from it.
#
#   docker build -f images/cpu.Dockerfile -t ghcr.io/codemill/codemill-cpu:0.1.0 .   (make images)
#
# Two stages: `build` installs everything into /opt/venv from the locks (constraints.txt
# plus images/requirements-cpu.txt); `runtime` copies only that venv onto the same slim
# base, so nothing used to build is left in the image. Both stages use the same base
# (same /usr/local/bin/python3.11), which is what makes the copied venv valid.

FROM python:3.11.14-slim-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY constraints.txt pyproject.toml README.md ./
COPY images/requirements-cpu.txt images/
# torch first, the CPU build from PyTorch's index: PyPI's torch==2.13.0 is the CUDA build
# (~3 GB of CUDA wheels). 2.13.0+cpu satisfies the lock's torch==2.13.0, so the next
# install keeps it; torch's own dependencies still come from PyPI at their locked versions.
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt \
        --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu"
COPY codemill/ codemill/
COPY components/ components/
COPY pipelines/ pipelines/
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt -r images/requirements-cpu.txt . \
    && /opt/venv/bin/pip check

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="codemill-cpu" \
      org.opencontainers.image.source="https://github.com/codemill/codemill" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric UID so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
RUN groupadd --gid 10001 codemill \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/codemill \
       --shell /usr/sbin/nologin codemill
COPY --from=build /opt/venv /opt/venv
# The compiled pipelines (codemill, posttrain, r1) at the paths `codemill pipeline submit` reads by default.
COPY pipelines/compiled/ /opt/codemill/pipelines/compiled/
# Caches point at /tmp: the chart mounts an emptyDir there and keeps the root read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/tmp/hf \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/home/codemill
WORKDIR /opt/codemill
USER 10001:10001
EXPOSE 8000 5000
# No Docker HEALTHCHECK: most containers of this image are batch steps, and on Kubernetes
# the chart's startup/readiness/liveness probes on /health and /ready do this job.
HEALTHCHECK NONE
CMD ["codemill", "--help"]
