"""Peers on the same chain: a naive one-commitment-per-transaction registry, and EAS.

Both are driven the same way and as favourably as is honest: the same JSON Lines file,
the same validation and salted commitment as credit-ledger, then one transaction per
record, signed locally, sent without waiting (pipelined) and their receipts fetched in
JSON-RPC batches: the clock stops when every record has a mined receipt.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import ledger
from bench.common import REPO
from ledger.chain import BoundContract, ChainClient
from ledger.chain.compile import COMPILER_SETTINGS, resolve_solc
from ledger.commitment import COMMIT_DOMAIN, SaltDeriver

_EAS = REPO / "node_modules" / "@ethereum-attestation-service" / "eas-contracts" / "artifacts"
_NAIVE = Path(__file__).resolve().parent / "contracts" / "NaiveRegistry.sol"
_ZERO32 = bytes(32)
_ZERO_ADDRESS = "0x" + "00" * 20
EAS_SCHEMA = "bytes32 commitment"
_SECRET = b"bench-node-secret-32-bytes-long!"


def compile_naive() -> dict[str, Any]:
    """Compile NaiveRegistry with the project's compiler resolution and pinned settings."""
    import solcx

    source = _NAIVE.read_text(encoding="utf-8")
    unit = "bench/contracts/NaiveRegistry.sol"
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {unit: {"content": source}},
            "settings": {
                **COMPILER_SETTINGS,
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        },
        solc_binary=str(resolve_solc()),
        allow_paths=str(REPO),
    )
    errors = [m for m in output.get("errors", []) if m.get("severity") == "error"]
    if errors:
        raise RuntimeError("\n".join(m["formattedMessage"] for m in errors))
    compiled = output["contracts"][unit]["NaiveRegistry"]
    return {"abi": compiled["abi"], "bytecode": "0x" + compiled["evm"]["bytecode"]["object"]}


def _eas_artifact(name: str) -> dict[str, Any]:
    artifact: dict[str, Any] = json.loads(
        (_EAS / "contracts" / f"{name}.sol" / f"{name}.json").read_text(encoding="utf-8")
    )
    return artifact


def _deploy(client: ChainClient, artifact: dict[str, Any], *args: Any) -> BoundContract:
    probe = BoundContract(client, _ZERO_ADDRESS, artifact["abi"])
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    result = client.deploy(code + probe.abi.encode_constructor(args))
    assert result.contract_address is not None
    return BoundContract(client, result.contract_address, artifact["abi"])


def deploy_naive(client: ChainClient, artifact: dict[str, Any]) -> BoundContract:
    """Deploy the naive registry."""
    return _deploy(client, artifact)


def deploy_eas(client: ChainClient) -> tuple[BoundContract, bytes, dict[str, Any]]:
    """Deploy SchemaRegistry and EAS from the npm package's artifacts; register the schema.

    Returns the EAS contract, the schema UID and deployment facts for the report.
    """
    registry = _deploy(client, _eas_artifact("SchemaRegistry"))
    eas = _deploy(client, _eas_artifact("EAS"), registry.address)
    tx = registry.transact("register", EAS_SCHEMA, _ZERO_ADDRESS, True)
    (event,) = [e for e in registry.decode_events(tx) if e.name == "Registered"]
    uid = bytes(event.args["uid"])
    version = json.loads((_EAS.parent / "package.json").read_text(encoding="utf-8"))["version"]
    return eas, uid, {"package_version": version, "schema": EAS_SCHEMA, "schema_uid": uid.hex()}


def _commitments(path: Path, count: int) -> list[tuple[bytes, bytes]]:
    """(record_key, commitment) of the first ``count`` records of a JSON Lines file."""
    derive = SaltDeriver(_SECRET)
    out = []
    with path.open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(count), strict=False):
            record = ledger.parse_record(json.loads(line))
            key = ledger.record_key_of(record)
            salted = COMMIT_DOMAIN + derive(key, 1) + record.canonical_bytes()
            out.append((key, hashlib.sha256(salted).digest()))
    return out


def run_per_record(
    client: ChainClient, contract: BoundContract, encode: Any, path: Path, count: int
) -> dict[str, Any]:
    """One transaction per record: file → commitments → mined receipts. Gas and records/s."""
    started = time.perf_counter()
    items = _commitments(path, count)
    calls = [encode(key, commitment) for key, commitment in items]
    gas = int(contract.client.estimate_gas(contract.address, calls[0]) * 1.3)
    hashes = [client.send_transaction(contract.address, data, gas=gas) for data in calls]
    sent = time.perf_counter()
    receipts: dict[str, Any] = {}
    pending = list(hashes)
    while pending:
        answers = []
        for start in range(0, len(pending), 500):
            chunk = pending[start : start + 500]
            answers += client.batch_request([("eth_getTransactionReceipt", [h]) for h in chunk])
        for tx_hash, receipt in zip(list(pending), answers, strict=True):
            if receipt is not None and receipt.get("blockNumber") is not None:
                receipts[tx_hash] = receipt
        pending = [h for h in pending if h not in receipts]
        if pending:
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    failed = sum(1 for r in receipts.values() if int(r["status"], 16) != 1)
    if failed:
        raise RuntimeError(f"{failed} peer transactions failed")
    gas_used = [int(r["gasUsed"], 16) for r in receipts.values()]
    return {
        "records": count,
        "transactions": len(hashes),
        "seconds": round(elapsed, 3),
        "send_seconds": round(sent - started, 3),
        "records_per_second": count / elapsed,
        "gas_per_record": sum(gas_used) / count,
    }


def naive_encoder(contract: BoundContract) -> Any:
    """Calldata of ``register(recordKey, commitment)``."""
    return lambda key, commitment: contract.abi.encode_call("register", [key, commitment])


def eas_encoder(contract: BoundContract, schema_uid: bytes) -> Any:
    """Calldata of ``attest`` with the commitment as the attestation's data."""
    from eth_abi.abi import encode as abi_encode

    def encode(key: bytes, commitment: bytes) -> bytes:
        data = abi_encode(["bytes32"], [commitment])
        request = (schema_uid, (_ZERO_ADDRESS, 0, True, _ZERO32, data, 0))
        return contract.abi.encode_call("attest", [request])

    return encode
