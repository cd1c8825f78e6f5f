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
# The C speedups' source is in the stamp: editing ledger/_speedups.c or setup.py rebuilds it.
py_stamp=$(stamp requirements.lock pyproject.toml setup.py ledger/_speedups.c)
if [ "$(cat .venv/.credit-ledger-stamp 2>/dev/null)" != "$py_stamp" ]; then
  echo "setup: installing Python packages from requirements.lock"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  # Editable install; it compiles the optional C extension ledger/_speedups (OpenSSL
  # SHA-256) into ledger/. Without a compiler or OpenSSL headers it goes on without it.
  rm -f ledger/_speedups.*.so
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$py_stamp" > .venv/.credit-ledger-stamp
elif ! ls ledger/_speedups.*.so >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; then
  echo "setup: building the ledger core's C speedups (ledger/_speedups.c)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
fi
echo "setup: ledger core runs $(.venv/bin/python -c 'from ledger import _native; print(_native.describe())')"

npm_stamp=$(stamp package-lock.json)
if [ "$(cat node_modules/.credit-ledger-stamp 2>/dev/null)" != "$npm_stamp" ]; then
  echo "setup: installing npm packages from package-lock.json (solc-js, anvil, ganache, OpenZeppelin)"
  # `npm ci` refuses this lock: npm 11 records only the host's optional anvil binary
  # (@foundry-rs/anvil-linux-amd64) yet demands the other platforms' entries. `npm install`
  # installs exactly the locked versions; the check below fails if it had to change the lock.
  cp package-lock.json node_modules.lock.tmp
  npm install --no-audit --no-fund --loglevel=error
  if ! cmp -s package-lock.json node_modules.lock.tmp; then
    mv node_modules.lock.tmp package-lock.json
    echo "setup: package.json and package-lock.json disagree; run npm install and commit the lock" >&2
    exit 1
  fi
  rm -f node_modules.lock.tmp
  echo "$npm_stamp" > node_modules/.credit-ledger-stamp
fi

# The artifacts are committed (a library user needs no solc); this only confirms that they
# match the sources, and rebuilds them if a developer changed a contract.
if ! .venv/bin/python -m ledger.chain.compile --check >/dev/null 2>&1; then
  echo "setup: compiling contracts"
  .venv/bin/python -m ledger.chain.compile
fi
echo "setup: ready"
