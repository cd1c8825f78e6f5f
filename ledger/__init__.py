"""credit-ledger core: records, canonical JSON, commitments, Merkle proofs, receipts, verdicts.

``import ledger`` gives a verifier everything of DESIGN §7 without a node, solc, web3 or a
database. The chain layer (``ledger.chain``) is a separate import and needs web3.

Typical offline check of a disclosure received from a region::

    verdict = ledger.verify_disclosure(disclosure_json)  # offline: steps 1-2
    verdict = ledger.verify_disclosure(disclosure_json, reader)  # steps 1-4 (ledger.chain)
    verdict = ledger.verify_disclosure_json(line, reader)  # the same, from the JSON text
"""

from ledger.canonical import canonical_json, canonicalize
from ledger.commitment import (
    STATUS,
    ZERO_HASH,
    Leaf,
    LeafStatus,
    commitment,
    derive_salt,
    leaf_bytes,
    leaf_hash,
    record_key,
    record_key_of,
)
from ledger.errors import (
    ChainError,
    CompileError,
    ContractError,
    LedgerError,
    ProofError,
    ReceiptError,
    RecordError,
    RootMismatchError,
)
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.receipts import BatchRef, ChainAnchor, Disclosure, Receipt
from ledger.records import (
    PAYLOAD_TYPES,
    RECORD_SCHEMA,
    RECORD_TYPES,
    AbnormalityReason,
    AdministrativeLicense,
    AdministrativePenalty,
    AnnualReport,
    BusinessAbnormality,
    CommitmentType,
    CreditCommitment,
    CreditRiskClass,
    EntityType,
    Payload,
    PenaltyKind,
    Record,
    RecordType,
    RedList,
    Registration,
    RegistrationStatus,
    RiskClass,
    SeriousViolation,
    parse_record,
)
from ledger.regions import PROVINCES, Province, is_division_code, region_name
from ledger.uscc import make_uscc, uscc_check_char, validate_uscc
from ledger.verify import (
    AnchoredBatch,
    AnchorReader,
    CachingAnchorReader,
    RecordHead,
    Verdict,
    VerdictStatus,
    verify_disclosure,
    verify_disclosure_json,
    verify_disclosures,
    verify_disclosures_json,
    verify_receipt,
)

__all__ = [
    # identifiers
    "validate_uscc",
    "uscc_check_char",
    "make_uscc",
    "is_division_code",
    "region_name",
    "Province",
    "PROVINCES",
    # records
    "RECORD_SCHEMA",
    "RECORD_TYPES",
    "RecordType",
    "Record",
    "Payload",
    "PAYLOAD_TYPES",
    "parse_record",
    "Registration",
    "AdministrativeLicense",
    "AdministrativePenalty",
    "BusinessAbnormality",
    "SeriousViolation",
    "CreditRiskClass",
    "AnnualReport",
    "CreditCommitment",
    "RedList",
    "EntityType",
    "RegistrationStatus",
    "PenaltyKind",
    "AbnormalityReason",
    "RiskClass",
    "CommitmentType",
    # encodings (DESIGN §3)
    "canonicalize",
    "canonical_json",
    "record_key",
    "record_key_of",
    "derive_salt",
    "commitment",
    "leaf_bytes",
    "leaf_hash",
    "Leaf",
    "LeafStatus",
    "STATUS",
    "ZERO_HASH",
    # Merkle trees (RFC 6962 / RFC 9162)
    "EMPTY_ROOT",
    "merkle_root",
    "MerkleTree",
    "inclusion_proof",
    "consistency_proof",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
    # receipts and verification (DESIGN §5)
    "ChainAnchor",
    "BatchRef",
    "Receipt",
    "Disclosure",
    "Verdict",
    "VerdictStatus",
    "AnchorReader",
    "AnchoredBatch",
    "RecordHead",
    "CachingAnchorReader",
    "verify_receipt",
    "verify_disclosure",
    "verify_disclosures",
    "verify_disclosure_json",
    "verify_disclosures_json",
    # errors
    "LedgerError",
    "RecordError",
    "ProofError",
    "RootMismatchError",
    "ReceiptError",
    "ChainError",
    "ContractError",
    "CompileError",
]
