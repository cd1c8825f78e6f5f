#!/usr/bin/env bash
# Set up a fresh checkout: Python venv and packages from requirements.lock, npm packages from
# package-lock.json, and the contract artifacts. Re-running skips what is already current.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
py_stamp=$(stamp requirements.lock pyproject.toml)
if [ "$(cat .venv/.credit-ledger-stamp 2>/dev/null)" != "$py_stamp" ]; then
  echo "setup: installing Python packages from requirements.lock"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$py_stamp" > .venv/.credit-ledger-stamp
fi

npm_stamp=$(stamp package-lock.json)
if [ "$(cat node_modules/.credit-ledger-stamp 2>/dev/null)" != "$npm_stamp" ]; then
  echo "setup: installing npm packages from package-lock.json (solc-js, anvil, ganache, OpenZeppelin)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_stamp" > node_modules/.credit-ledger-stamp
fi

# The artifacts are committed (a library user needs no solc); this only confirms that they
# match the sources, and rebuilds them if a developer changed a contract.
if ! .venv/bin/python -m ledger.chain.compile --check >/dev/null 2>&1; then
  echo "setup: compiling contracts"
  .venv/bin/python -m ledger.chain.compile
fi
echo "setup: ready"
