"""Gas used by the contracts' hot paths, measured on a fresh anvil.

Usage: .venv/bin/python scripts/gas_report.py

Transaction figures are receipt ``gasUsed`` (including the 21,000 base cost and calldata);
``verifyInclusion`` is a view, so its figure is ``eth_estimateGas`` of calling it in a
transaction, which includes the same base cost.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

# Run as a file from anywhere: make the repository's ledger package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.chain import ChainClient, HeadUpdate, deploy_contracts  # noqa: E402
from ledger.chain.localnode import LocalNode  # noqa: E402

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _perfect_tree_path(depth: int, index: int) -> tuple[bytes, bytes, list[bytes]]:
    """Leaf hash, root and audit path of leaf ``index`` in a 2**depth-leaf RFC 6962 tree."""
    level = [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(2**depth)]
    leaf = level[index]
    path = []
    position = index
    while len(level) > 1:
        path.append(level[position ^ 1])
        level = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level), 2)
        ]
        position //= 2
    return leaf, level[0], path


def main() -> int:
    """Deploy, exercise each path once and print a table."""
    rows: list[tuple[str, int]] = []
    with LocalNode("anvil") as node:
        keys = node.dev_keys
        bj, tj, hb = (ChainClient(node.rpc_url, k, chain_id=node.chain_id) for k in keys[:3])
        deployment = deploy_contracts(
            bj,
            [BEIJING, TIANJIN, HEBEI],
            ["Beijing", "Tianjin", "Hebei"],
            [bj.address, tj.address, hb.address],
            2,
        )
        # anvil automines one transaction per block: the two deployments are these blocks.
        for offset, name in enumerate(("Consortium", "CreditAnchor")):
            (tx_hash,) = bj.get_block(deployment.deployed_block + offset)["transactions"]
            receipt = bj.request("eth_getTransactionReceipt", [tx_hash])
            rows.append((f"deploy {name}", int(receipt["gasUsed"], 16)))

        anchor_bj = deployment.anchor_client(bj)
        anchor_tj = deployment.anchor_client(tj)
        anchor_hb = deployment.anchor_client(hb)

        first = anchor_bj.anchor_batch(BEIJING, 0, _h("root 0"), 4096, _h("manifest 0"))
        rows.append(("anchorBatch, 0 heads (region's first batch)", first.gas_used))
        steady = anchor_bj.anchor_batch(BEIJING, 1, _h("root 1"), 4096, _h("manifest 1"))
        rows.append(("anchorBatch, 0 heads", steady.gas_used))

        keys10 = [_h(f"record {i}") for i in range(10)]
        new_heads = [HeadUpdate(k, _h(f"{i} v2"), 2, 1) for i, k in enumerate(keys10)]
        ten_new = anchor_bj.anchor_batch(
            BEIJING, 2, _h("root 2"), 4096, _h("manifest 2"), new_heads
        )
        rows.append(("anchorBatch, 10 heads (first supersession)", ten_new.gas_used))
        moved = [HeadUpdate(k, _h(f"{i} v3"), 3, 2) for i, k in enumerate(keys10)]
        ten_moved = anchor_bj.anchor_batch(BEIJING, 3, _h("root 3"), 4096, _h("manifest 3"), moved)
        rows.append(("anchorBatch, 10 heads (heads already set)", ten_moved.gas_used))

        rows.append(
            ("endorse (first endorser)", anchor_tj.endorse(BEIJING, 0, _h("root 0")).gas_used)
        )
        rows.append(
            ("endorse (second endorser)", anchor_hb.endorse(BEIJING, 0, _h("root 0")).gas_used)
        )

        leaf, root, path = _perfect_tree_path(16, 40_000)
        anchor_bj.anchor_batch(BEIJING, 4, root, 2**16, _h("manifest 4"))
        assert anchor_bj.verify_inclusion(BEIJING, 4, leaf, 40_000, path)
        estimate = anchor_bj.estimate_gas("verifyInclusion", BEIJING, 4, leaf, 40_000, path)
        rows.append(("verifyInclusion, 16-level proof (eth_estimateGas)", estimate))
        for client in (bj, tj, hb):
            client.close()

    width = max(len(label) for label, _ in rows)
    print(f"{'operation':<{width}}  {'gas':>9}")
    for label, gas in rows:
        print(f"{label:<{width}}  {gas:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
