"""Run the local consortium: a persistent local chain with Consortium and CreditAnchor deployed.

    python scripts/consortium.py up [--chain anvil|ganache] [--port N] [--detach]
    python scripts/consortium.py status
    python scripts/consortium.py down

A thin wrapper of ``credit-ledger chain …`` (``node_api/cli/localchain.py`` holds the logic).
State lives in the repository's .local/ (or $CREDIT_LEDGER_LOCAL_DIR). Running ``up`` again
reuses the chain state and the deployment recorded in .local/deployment.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from node_api.cli import main as cli_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """``credit-ledger chain <argv>`` with the repository's .local/ as the default state."""
    args = sys.argv[1:] if argv is None else argv
    local_dir = os.environ.get("CREDIT_LEDGER_LOCAL_DIR") or str(REPO_ROOT / ".local")
    return cli_main(["chain", "--local-dir", local_dir, *args])


if __name__ == "__main__":
    sys.exit(main())
