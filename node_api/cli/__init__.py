"""The ``credit-ledger`` command line: local chain, deployment, nodes, bulk import, verification.

``main()`` is the console script; every command is a Typer command of ``app``.
"""

from node_api.cli.app import app, main

__all__ = ["app", "main"]
