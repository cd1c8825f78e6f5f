"""Helpers for tests, demos and benchmarks: sample records and a local consortium on anvil.

Development only: a local consortium uses the well-known development keys.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ledger

__all__ = [
    "REGIONS",
    "sample_uscc",
    "sample_record",
    "LocalConsortium",
    "start_local_consortium",
]

REGIONS = {110000: "Beijing", 120000: "Tianjin", 130000: "Hebei"}

_counter = itertools.count(1)

_SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "registration": {
        "enterprise_name": "北京示例科技有限公司",
        "legal_representative": "张三",
        "entity_type": "limited_liability_company",
        "established_on": "2015-03-18",
        "address": "北京市海淀区中关村大街1号",
        "business_scope": "技术开发、技术咨询",
        "registered_capital_fen": 100000000,
    },
    "administrative_penalty": {
        "decision_number": "京市监罚〔2024〕101号",
        "violation": "虚假宣传",
        "legal_basis": "《中华人民共和国反不正当竞争法》第八条",
        "penalty_kinds": ["fine"],
        "amount_fen": 5000000,
        "decision_date": "2024-04-02",
        "authority": "北京市市场监督管理局",
    },
    "business_abnormality": {
        "reason": "annual_report_not_filed",
        "listing_authority": "北京市市场监督管理局",
        "listed_on": "2024-07-01",
    },
    "serious_violation": {
        "reason": "提交虚假材料取得公司登记",
        "listing_authority": "北京市市场监督管理局",
        "listed_on": "2024-08-15",
    },
    "credit_risk_class": {"risk_class": "B", "assessed_at": "2024-06-30"},
}


def sample_uscc(region: int = 110000, n: int | None = None) -> str:
    """A valid USCC registered in ``region`` (unique per call unless ``n`` is given)."""
    number = next(_counter) if n is None else n
    return ledger.make_uscc(region, f"{number % 10**9:09d}")


def sample_record(
    region: int = 110000,
    uscc: str | None = None,
    record_type: str = "business_abnormality",
    record_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A valid record JSON object; ``data`` overrides payload fields."""
    return {
        "schema": "credit-ledger/record/v1",
        "region": region,
        "uscc": uscc or sample_uscc(region),
        "record_type": record_type,
        "record_id": record_id or f"DOC-{secrets.token_hex(6)}",
        "issued_by": "北京市市场监督管理局",
        "issued_at": "2024-09-01",
        "data": {**_SAMPLE_DATA[record_type], **data},
    }


@dataclass
class LocalConsortium:
    """An anvil chain with Consortium and CreditAnchor deployed for the three pilot regions.

    Signers: ``dev_keys[1]`` Beijing, ``[2]`` Tianjin, ``[3]`` Hebei; ``[0]`` deployed.
    """

    node: Any  # ledger.chain.localnode.LocalNode
    deployment: Any  # ledger.chain.Deployment
    deployment_file: Path

    @property
    def rpc_url(self) -> str:
        """JSON-RPC URL of the chain."""
        return str(self.node.rpc_url)

    @property
    def keys(self) -> tuple[str, ...]:
        """Development private keys."""
        return tuple(self.node.dev_keys)

    def signer_key(self, region: int) -> str:
        """Private key of the founding signer of ``region``."""
        return self.keys[1 + list(REGIONS).index(region)]

    def client(self, key: str | None = None) -> Any:
        """A ChainClient signing with ``key`` (read-only without)."""
        from ledger.chain import ChainClient

        return ChainClient(self.rpc_url, key, chain_id=self.deployment.chain_id)

    def anchor(self, key: str | None = None) -> Any:
        """An AnchorClient."""
        return self.deployment.anchor_client(self.client(key))

    def consortium(self, key: str | None = None) -> Any:
        """A ConsortiumClient."""
        return self.deployment.consortium_client(self.client(key))

    def stop(self) -> None:
        """Stop the chain."""
        self.node.stop()


def start_local_consortium(
    directory: Path, *, kind: str = "anvil", threshold: int = 2, state_dir: Path | None = None
) -> LocalConsortium:
    """Start a chain, deploy the contracts, and write ``directory/deployment.json``."""
    from ledger.chain import ChainClient, deploy_contracts
    from ledger.chain.localnode import LocalNode

    node = LocalNode(kind, state_dir=state_dir).start()  # type: ignore[arg-type]
    try:
        keys = node.dev_keys
        from eth_account import Account

        signers = [Account.from_key(keys[1 + i]).address for i in range(len(REGIONS))]
        with ChainClient(node.rpc_url, keys[0]) as client:
            deployment = deploy_contracts(
                client, list(REGIONS), list(REGIONS.values()), signers, threshold
            )
        path = Path(directory) / "deployment.json"
        deployment.save(path)
    except BaseException:
        node.stop()
        raise
    return LocalConsortium(node=node, deployment=deployment, deployment_file=path)
