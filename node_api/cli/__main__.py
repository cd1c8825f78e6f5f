"""``python -m node_api.cli``: the same as the ``credit-ledger`` command."""

import sys

from node_api.cli.app import main

sys.exit(main())
