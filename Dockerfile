# syntax=docker/dockerfile:1
# Kollie's container image: `docker build -t kollie .` from the repository root.
# Pin the base image by digest in your build (e.g. with Renovate); the tag names the exact version.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: the wheel of this repository and the wheels of its dependencies.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kollie ./kollie
COPY web ./web
COPY watchers ./watchers
COPY kubesim ./kubesim
RUN pip wheel --wheel-dir /wheels .

# Final stage: the installed wheels only — no compiler, no pip cache, no sources.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kollie" \
      org.opencontainers.image.description="Ephemeral test environments on Kubernetes with Flux" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kollie-dev/kollie" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels kollie \
    && groupadd --gid 10001 kollie \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kollie
USER 10001:10001
EXPOSE 8080
# The chart passes `serve --host 0.0.0.0 --port 8080`; `kollie demo` runs the emulated cluster.
ENTRYPOINT ["kollie"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
