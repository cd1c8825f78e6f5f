"""Deploy Consortium and CreditAnchor from the committed artifacts and record the deployment.

A deployment file pins what a node talks to: chain id, both addresses, the block to start
event scans from, and the SHA-256 of each artifact's runtime code, so that a node can check
at start-up that the code on chain is the code it was built against.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.chain.anchor import AnchorClient
from ledger.chain.client import ChainClient, ContractAbi
from ledger.chain.consortium import ConsortiumClient
from ledger.errors import ChainError

__all__ = [
    "DEPLOYMENT_FORMAT",
    "Deployment",
    "deploy_anchor",
    "deploy_consortium",
    "deploy_contracts",
]

DEPLOYMENT_FORMAT = "credit-ledger/deployment/v1"


def _creation_code(name: str, constructor_args: Sequence[Any]) -> bytes:
    from ledger.chain.compile import load_artifact

    artifact = load_artifact(name)
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    return code + ContractAbi(artifact["abi"]).encode_constructor(constructor_args)


def deploy_consortium(
    client: ChainClient,
    regions: Sequence[int],
    names: Sequence[str],
    signers: Sequence[str],
    threshold: int,
    *,
    gas: int | None = None,
) -> ConsortiumClient:
    """Deploy a Consortium; ``signers[i]`` becomes the first signer of ``regions[i]``."""
    code = _creation_code(
        "Consortium",
        [list(regions), list(names), [to_checksum_address(s) for s in signers], threshold],
    )
    tx = client.deploy(code, gas=gas)
    assert tx.contract_address is not None
    return ConsortiumClient(client, tx.contract_address, deployed_block=tx.block_number)


def deploy_anchor(client: ChainClient, consortium: str, *, gas: int | None = None) -> AnchorClient:
    """Deploy a CreditAnchor that takes its write rights from ``consortium``."""
    tx = client.deploy(_creation_code("CreditAnchor", [to_checksum_address(consortium)]), gas=gas)
    assert tx.contract_address is not None
    return AnchorClient(client, tx.contract_address, deployed_block=tx.block_number)


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live and which artifacts they were deployed from."""

    chain_id: int
    consortium: str
    anchor: str
    deployed_block: int
    deployer: str
    artifact_hashes: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    format: str = DEPLOYMENT_FORMAT

    def to_json(self) -> str:
        """Stable JSON (sorted keys) of the deployment."""
        data = asdict(self)
        data["artifact_hashes"] = dict(sorted(self.artifact_hashes.items()))
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parse a deployment file; ChainError if it is not one."""
        try:
            data = json.loads(text)
            if data.get("format", DEPLOYMENT_FORMAT) != DEPLOYMENT_FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return cls(
                chain_id=int(data["chain_id"]),
                consortium=to_checksum_address(data["consortium"]),
                anchor=to_checksum_address(data["anchor"]),
                deployed_block=int(data["deployed_block"]),
                deployer=to_checksum_address(data["deployer"]),
                artifact_hashes={
                    str(k): str(v) for k, v in data.get("artifact_hashes", {}).items()
                },
                created_at=str(data.get("created_at", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ChainError(f"invalid deployment file: {e}") from e

    def save(self, path: str | Path) -> None:
        """Write the deployment file (atomically: temp file then rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        """Read a deployment file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ChainError(f"cannot read deployment file {path}: {e}") from e
        return cls.from_json(text)

    def consortium_client(self, client: ChainClient) -> ConsortiumClient:
        """A ConsortiumClient for this deployment."""
        return ConsortiumClient(client, self.consortium, deployed_block=self.deployed_block)

    def anchor_client(self, client: ChainClient) -> AnchorClient:
        """An AnchorClient for this deployment."""
        return AnchorClient(client, self.anchor, deployed_block=self.deployed_block)

    def verify_on_chain(self, client: ChainClient) -> None:
        """Check chain id, the artifacts and the runtime code at both addresses.

        CreditAnchor keeps the consortium address as an immutable, which the compiler leaves
        as zero words in ``deployedBytecode``; the comparison masks that address out of the
        on-chain code. Raises ChainError naming the first mismatch.
        """
        from ledger.chain.compile import ARTIFACT_NAMES, artifact_hash, load_artifact

        if client.chain_id != self.chain_id:
            raise ChainError(f"chain id is {client.chain_id}, deployment is for {self.chain_id}")
        for name in ARTIFACT_NAMES:
            expected = self.artifact_hashes.get(name)
            if expected is not None and artifact_hash(name) != expected:
                raise ChainError(
                    f"artifact {name} differs from the one deployed "
                    f"(sha256 {artifact_hash(name)}, deployment says {expected})"
                )
        consortium_word = bytes(12) + bytes.fromhex(self.consortium[2:])
        checks = (
            ("Consortium", self.consortium, None),
            ("CreditAnchor", self.anchor, consortium_word),
        )
        for name, address, immutable in checks:
            onchain = client.get_code(address)
            if not onchain:
                raise ChainError(f"no code at {name} address {address}")
            built = bytes.fromhex(load_artifact(name)["deployedBytecode"].removeprefix("0x"))
            if immutable is not None:
                if immutable not in onchain:
                    raise ChainError(f"{name} at {address} is not bound to {self.consortium}")
                onchain = onchain.replace(immutable, bytes(32))
            if onchain != built:
                raise ChainError(f"code at {address} is not the {name} artifact")


def deploy_contracts(
    client: ChainClient,
    regions: Sequence[int],
    names: Sequence[str],
    signers: Sequence[str],
    threshold: int,
) -> Deployment:
    """Deploy both contracts and return the deployment record."""
    from ledger.chain.compile import ARTIFACT_NAMES, artifact_hash

    consortium = deploy_consortium(client, regions, names, signers, threshold)
    anchor = deploy_anchor(client, consortium.address)
    return Deployment(
        chain_id=client.chain_id,
        consortium=consortium.address,
        anchor=anchor.address,
        deployed_block=consortium.deployed_block,
        deployer=client.address,
        artifact_hashes={name: artifact_hash(name) for name in ARTIFACT_NAMES},
        created_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )


def _parse_region(spec: str) -> tuple[int, str, str]:
    try:
        code, name, signer = spec.split(":", 2)
        return int(code), name, to_checksum_address(signer)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected CODE:NAME:SIGNER, got {spec!r}") from e


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rpc-url", default=os.environ.get("CREDIT_LEDGER_RPC_URL", "http://127.0.0.1:8545")
    )
    parser.add_argument(
        "--region",
        action="append",
        type=_parse_region,
        required=True,
        help="founding region as CODE:NAME:FIRST_SIGNER (repeat)",
    )
    parser.add_argument("--threshold", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="deployment file to write")
    args = parser.parse_args(argv)
    key = os.environ.get("CREDIT_LEDGER_DEPLOYER_KEY")
    if not key:
        print(
            "error: set CREDIT_LEDGER_DEPLOYER_KEY to the deployer's private key", file=sys.stderr
        )
        return 2
    regions: list[tuple[int, str, str]] = args.region
    try:
        with ChainClient(args.rpc_url, key) as client:
            deployment = deploy_contracts(
                client,
                [r[0] for r in regions],
                [r[1] for r in regions],
                [r[2] for r in regions],
                args.threshold,
            )
            deployment.verify_on_chain(client)
    except ChainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    deployment.save(args.out)
    print(deployment.to_json(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
