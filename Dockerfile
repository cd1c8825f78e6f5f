# The regional node image: the ledger library and the node service, run as `credit-ledger`.
# No solc or npm inside: the compiled contracts ship as package data. Used by
# docker-compose.yml (nodes and the one-shot deployment); see the README.

# Build stage: a wheel with the ledger core's C speedups (ledger/_speedups.c, OpenSSL's
# SHA-256). The runtime image needs no compiler; python:3.11-slim already has libssl3.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py requirements.lock README.md ./
COPY ledger ./ledger
COPY node_api ./node_api
RUN pip wheel --no-deps --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
# The lock pins every dependency (it also lists the dev tools, which `[node]` leaves out).
# The last step fails the build if the speedups did not make it into the image.
RUN pip install --constraint /tmp/requirements.lock "$(ls /wheels/credit_ledger-*.whl)[node]" \
    && rm -rf /wheels \
    && python -c "import ledger._native as n; assert n.speedups is not None, 'no C speedups'"

# An unprivileged user; /data (node files) and /shared (the deployment file) are volumes
# that inherit this ownership when Docker creates them.
RUN useradd --system --uid 10001 --home-dir /data credit \
    && mkdir -p /data /shared \
    && chown credit:credit /data /shared
USER credit
WORKDIR /data

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import json, urllib.request; json.load(urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4))"]

ENTRYPOINT ["credit-ledger"]
CMD ["node", "serve", "--host", "0.0.0.0", "--port", "8000"]
