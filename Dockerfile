# The regional node image: the ledger library and the node service, run as `credit-ledger`.
# No solc or npm inside: the compiled contracts ship as package data. Used by
# docker-compose.yml (nodes and the one-shot deployment); see the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY ledger ./ledger
COPY node_api ./node_api
# The lock pins every dependency (it also lists the dev tools, which `.[node]` leaves out).
RUN pip install --constraint requirements.lock ".[node]"

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
