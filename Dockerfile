# syntax=docker/dockerfile:1
# lbprov controller image: the core plus the providers chosen at build time.
#
#   docker build -t lbprov .                              # all providers
#   docker build -t lbprov-aws --build-arg PROVIDERS=aws .   # AWS only (no GCP/Azure SDKs)
#
# Checked (parsed, not built) by tests/deploy/test_dockerfile.py.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the wheels into a self-contained virtualenv -------------------------------
FROM ${PYTHON_IMAGE} AS build
# Space-separated provider names, each a directory under providers/ (default: all of them).
ARG PROVIDERS="aws gcp azure"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lbprov ./lbprov
COPY providers ./providers
# Non-editable installs of the core and of each chosen provider only: no test or sandbox extras
# (moto and friends stay out of the image).
RUN set -eu; \
    python -m venv /opt/lbprov; \
    targets="."; \
    for p in ${PROVIDERS}; do \
      if [ ! -f "providers/$p/pyproject.toml" ]; then echo "unknown provider: $p" >&2; exit 1; fi; \
      targets="$targets ./providers/$p"; \
    done; \
    /opt/lbprov/bin/pip install $targets; \
    /opt/lbprov/bin/lbprov providers

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG PROVIDERS="aws gcp azure"
LABEL org.opencontainers.image.title="lbprov" \
      org.opencontainers.image.description="Cloud load balancers for Kubernetes Services of type LoadBalancer" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.lbprov.providers="${PROVIDERS}"
COPY --from=build /opt/lbprov /opt/lbprov
# No .pyc writes at run time: the root filesystem is read-only in the Deployment.
# MALLOC_ARENA_MAX=2: glibc gives each of the controller's worker threads a malloc arena of its own
# (up to 8 per core), and each keeps what a read round's listings used after they are freed. Two
# arenas halved the controller's RSS growth per Service (bench/scale_memory.py, AWS, 500 Services:
# +33.1 MB over startup -> +16.4 MB; same calls, same CPU).
ENV PATH="/opt/lbprov/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
# A numeric non-root UID/GID, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# Prometheus /metrics and the /healthz /readyz probes.
EXPOSE 8080
ENTRYPOINT ["lbprov", "run"]
