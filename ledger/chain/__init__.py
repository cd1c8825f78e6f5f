"""Chain layer: the only part of the library that talks to Ethereum (web3, eth-account).

``ChainClient`` is the JSON-RPC connection with a local signing account; ``ConsortiumClient``
and ``AnchorClient`` are typed wrappers of the two contracts; ``deploy_contracts`` and
``Deployment`` deploy them from the committed artifacts and record where they live.
Compilation (``ledger.chain.compile``) and local dev chains (``ledger.chain.localnode``) are
separate modules, imported on demand.
"""

from ledger.chain.anchor import (
    AnchorClient,
    BatchAnchoredEvent,
    BatchEndorsedEvent,
    HeadMovedEvent,
    HeadUpdate,
    InclusionQuery,
)
from ledger.chain.client import (
    BoundContract,
    ChainClient,
    ChainEvent,
    ContractAbi,
    ErrorDecoder,
    TxResult,
)
from ledger.chain.consortium import (
    ConsortiumClient,
    Proposal,
    ProposalKind,
    ProposalTx,
    decode_proposal_data,
    encode_proposal_data,
)
from ledger.chain.deploy import Deployment, deploy_anchor, deploy_consortium, deploy_contracts

__all__ = [
    "AnchorClient",
    "BatchAnchoredEvent",
    "BatchEndorsedEvent",
    "BoundContract",
    "ChainClient",
    "ChainEvent",
    "ConsortiumClient",
    "ContractAbi",
    "Deployment",
    "ErrorDecoder",
    "HeadMovedEvent",
    "HeadUpdate",
    "InclusionQuery",
    "Proposal",
    "ProposalKind",
    "ProposalTx",
    "TxResult",
    "decode_proposal_data",
    "deploy_anchor",
    "deploy_consortium",
    "deploy_contracts",
    "encode_proposal_data",
]
