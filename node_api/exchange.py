"""Exchange packages between regions: export, verification against the chain, import, endorsement.

Package format (``application/x-ndjson``: UTF-8 JSON Lines, every line ending in ``\\n``)::

    line 1 … n   one DESIGN §5 disclosure per leaf of every batch in the range, in
                 (seq, leaf index) order, serialised as RFC 8785 (JCS):
                 {"receipt": {…}, "record": {…}, "salt": "<hex>"}
    line n + 1   the trailer, the last non-empty line:
                 {"manifest": {…}, "domain": {…}, "signer": "0x…", "signature": "0x…"}

    manifest = {"format": "credit-ledger/exchange-manifest/v1", "region": 110000,
                "from_seq": 0, "to_seq": 3,
                "batches": [{"seq": 0, "root": "<hex>", "size": 4096}, …],
                "disclosures": <n>, "body_sha256": "<hex>", "created_at": <unix seconds>}

``body_sha256`` is SHA-256 over the bytes of lines 1 … n, newlines included. The manifest
is a trailer rather than a header so that a package streams: its body hash is known only
once the last disclosure has been written, and an exporter need not build a large range
twice. ``batches`` lists every batch of ``[from_seq, to_seq]``; the exporter clips the range
to the contiguous anchored batches it holds. ``signature`` is an EIP-712 signature (65 bytes
r‖s‖v, 0x hex) by a Consortium signer of ``region``::

    domain = {name: "credit-ledger", version: "1", chainId, verifyingContract: CreditAnchor}
    ExchangeManifest(string format,uint32 region,uint64 fromSeq,uint64 toSeq,
                     BatchCommitment[] batches,uint64 disclosures,bytes32 bodySha256,
                     uint64 createdAt)
    BatchCommitment(uint64 seq,bytes32 root,uint32 size)

``domain`` and ``signer`` in the trailer are informative: an importer rebuilds the domain
from its own deployment, so a package signed for another chain or contract cannot verify.

Verification of a package (import and integrity check):

1. The trailer parses; its domain is this node's; the signature recovers to ``signer``;
   the Consortium lists that address as a signer of ``manifest.region`` now. Otherwise the
   package is rejected outright (HTTP 422) before any disclosure is looked at.
2. The body hash and the disclosure count match the manifest; every manifest batch lies in
   ``[from_seq, to_seq]`` and has the root and size that ``batchOf`` holds; every batch
   the chain holds in the range is in the manifest. Failures are package ``problems``.
3. Every disclosure is verified against the chain (DESIGN §5 steps 1-4) and lands in
   exactly one of ``verified`` (current), ``superseded``, ``revoked`` (authentic, but a
   later version is the head), ``tampered`` (some step failed, unparsable, duplicated, or
   outside the signed manifest), ``unanchored`` (its batch is not on chain) and
   ``wrong_region`` (the record, or the disclosure, is of another region than the batch,
   or the package). ``missing`` counts the leaves of the range's anchored batches for which
   no disclosure came. Counts are exact; every item that is not ``verified`` is listed
   (up to ``MAX_REPORTED_ITEMS``).
4. A batch is fully verified when the package passed 1-2, the batch matches the chain, and
   each of its leaves has exactly one authentic disclosure (verified, superseded or revoked:
   a superseded leaf was genuinely anchored; refusing it would make every batch with a
   later-corrected record unendorsable). With ``endorse`` those batches are endorsed on
   chain with this node's signer, skipping batches this region endorsed already.

The report (stored, and returned by import and integrity check)::

    {"id", "kind": "import"|"check", "status": "completed"|"rejected"|"unavailable"|"failed",
     "region", "from_seq", "to_seq", "checked_by", "requested_by", "created_at", "finished_at",
     "counts": {"verified", "tampered", "unanchored", "superseded", "revoked",
                "wrong_region", "missing"},
     "clean", "disclosures", "leaves", "problems": [...],
     "package": {"signer", "manifest", "signature_ok", "body_hash_ok", ...},
     "batches": [{"seq", "root", "size", "chain_root", "chain_size", "matches_chain",
                  "<count per outcome>", "fully_verified", "problems", "endorsement"}],
     "endorsed", "stored_disclosures",
     "items": [{"outcome", "line", "record_key", "version", "seq", "index", "failed_step",
                "step_name", "reason", "expected", "computed", "head_version", ...}],
     "items_truncated"}

Storage: every report is stored (``integrity_reports``). Authentic disclosures of other
regions are stored in ``foreign_disclosures`` when asked (import does by default): the
pilot shares these records among member regions, so auditors and federated history may use
them. They are never served to verifiers: no verifier route reads that table.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any, Final

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

import ledger
from ledger.errors import ChainError, ContractError, ReceiptError, RecordError
from ledger.verify import AnchoredBatch, RecordHead, VerdictStatus
from node_api.auth import Principal
from node_api.db.exchange_schema import foreign_disclosures, integrity_reports
from node_api.db.tables import batches, record_versions
from node_api.errors import BadRequest, NodeError, NotFound, Unavailable

__all__ = [
    "MANIFEST_FORMAT",
    "PACKAGE_MEDIA_TYPE",
    "OUTCOMES",
    "MAX_REPORTED_ITEMS",
    "BatchCommitment",
    "ExchangeManifest",
    "ExportPlan",
    "PackageRejected",
    "eip712_domain",
    "manifest_typed_data",
    "sign_manifest",
    "recover_manifest_signer",
    "trailer_line",
    "plan_export",
    "stream_package",
    "verify_package",
    "import_package",
    "report_json",
    "start_report",
    "finish_report",
    "run_stored",
    "verify_absent_package",
]

_log = logging.getLogger("node_api.exchange")

MANIFEST_FORMAT: Final = "credit-ledger/exchange-manifest/v1"
PACKAGE_MEDIA_TYPE: Final = "application/x-ndjson"
OUTCOMES: Final = (
    "verified",
    "tampered",
    "unanchored",
    "superseded",
    "revoked",
    "wrong_region",
    "missing",
)
_AUTHENTIC: Final = frozenset({"verified", "superseded", "revoked"})
MAX_REPORTED_ITEMS: Final = 1000
_CHUNK_LINES = 256  # disclosures verified per round of batched headOf reads
_EXPORT_LINES_PER_YIELD = 256

_EIP712_DOMAIN_NAME = "credit-ledger"
_EIP712_DOMAIN_VERSION = "1"
_EIP712_TYPES: Final = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "ExchangeManifest": [
        {"name": "format", "type": "string"},
        {"name": "region", "type": "uint32"},
        {"name": "fromSeq", "type": "uint64"},
        {"name": "toSeq", "type": "uint64"},
        {"name": "batches", "type": "BatchCommitment[]"},
        {"name": "disclosures", "type": "uint64"},
        {"name": "bodySha256", "type": "bytes32"},
        {"name": "createdAt", "type": "uint64"},
    ],
    "BatchCommitment": [
        {"name": "seq", "type": "uint64"},
        {"name": "root", "type": "bytes32"},
        {"name": "size", "type": "uint32"},
    ],
}
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_U32 = 2**32 - 1
_U64 = 2**64 - 1
# secp256k1 group order: a signature with s above half of it has a twin (n - s, v flipped).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class PackageRejected(NodeError):
    """The package cannot be trusted at all (trailer, domain, signature or signer)."""

    status_code = 422
    code = "package_rejected"


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True, slots=True)
class BatchCommitment:
    """One batch as the manifest states it: sequence number, Merkle root, size."""

    seq: int
    root: bytes
    size: int

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON form."""
        return {"seq": self.seq, "root": self.root.hex(), "size": self.size}


@dataclass(frozen=True, slots=True)
class ExchangeManifest:
    """What the exporting region signs: range, batches and the hash of the disclosures."""

    region: int
    from_seq: int
    to_seq: int
    batches: tuple[BatchCommitment, ...]
    disclosures: int
    body_sha256: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON object (see the module docstring)."""
        return {
            "format": MANIFEST_FORMAT,
            "region": self.region,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "batches": [b.to_json() for b in self.batches],
            "disclosures": self.disclosures,
            "body_sha256": self.body_sha256.hex(),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, obj: object) -> ExchangeManifest:
        """Parse a manifest strictly; PackageRejected names the offending field."""
        members = _members(
            obj,
            "manifest",
            {
                "format",
                "region",
                "from_seq",
                "to_seq",
                "batches",
                "disclosures",
                "body_sha256",
                "created_at",
            },
        )
        if members["format"] != MANIFEST_FORMAT:
            raise PackageRejected(
                f"unsupported manifest format {members['format']!r}", field="manifest.format"
            )
        region = _uint(members["region"], "manifest.region", _U32)
        if not ledger.is_division_code(region):
            raise PackageRejected(
                f"{region} is not a GB/T 2260 division code", field="manifest.region"
            )
        from_seq = _uint(members["from_seq"], "manifest.from_seq", _U64)
        to_seq = _uint(members["to_seq"], "manifest.to_seq", _U64)
        if to_seq < from_seq:
            raise PackageRejected("to_seq is below from_seq", field="manifest.to_seq")
        raw_batches = members["batches"]
        if type(raw_batches) is not list:
            raise PackageRejected("must be an array", field="manifest.batches")
        parsed = []
        for position, item in enumerate(raw_batches):
            where = f"manifest.batches[{position}]"
            entry = _members(item, where, {"seq", "root", "size"})
            parsed.append(
                BatchCommitment(
                    seq=_uint(entry["seq"], f"{where}.seq", _U64),
                    root=_hex32(entry["root"], f"{where}.root"),
                    size=_uint(entry["size"], f"{where}.size", _U32),
                )
            )
        return cls(
            region=region,
            from_seq=from_seq,
            to_seq=to_seq,
            batches=tuple(parsed),
            disclosures=_uint(members["disclosures"], "manifest.disclosures", _U64),
            body_sha256=_hex32(members["body_sha256"], "manifest.body_sha256"),
            created_at=_uint(members["created_at"], "manifest.created_at", _U64),
        )


def _members(obj: object, where: str, expected: set[str]) -> dict[str, Any]:
    if type(obj) is not dict:
        raise PackageRejected("must be a JSON object", field=where)
    keys = set(obj)
    if keys != expected:
        extra, lacking = sorted(keys - expected), sorted(expected - keys)
        name = extra[0] if extra else lacking[0]
        reason = "unknown field" if extra else "required field is missing"
        raise PackageRejected(f"{where}.{name}: {reason}", field=f"{where}.{name}")
    return obj


def _uint(value: object, where: str, maximum: int) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise PackageRejected(f"{where}: must be an integer in 0..{maximum}", field=where)
    return value


def _hex32(value: object, where: str) -> bytes:
    if type(value) is not str or not _HEX32.match(value):
        raise PackageRejected(f"{where}: must be 64 lower-case hex digits", field=where)
    return bytes.fromhex(value)


def eip712_domain(chain_id: int, anchor_address: str) -> dict[str, Any]:
    """The EIP-712 domain of exchange manifests on one deployment."""
    return {
        "name": _EIP712_DOMAIN_NAME,
        "version": _EIP712_DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": anchor_address,
    }


def manifest_typed_data(
    manifest: ExchangeManifest, chain_id: int, anchor_address: str
) -> dict[str, Any]:
    """The EIP-712 ``full_message`` (types, domain, message) of a manifest."""
    return {
        "types": _EIP712_TYPES,
        "primaryType": "ExchangeManifest",
        "domain": eip712_domain(chain_id, anchor_address),
        "message": {
            "format": MANIFEST_FORMAT,
            "region": manifest.region,
            "fromSeq": manifest.from_seq,
            "toSeq": manifest.to_seq,
            "batches": [{"seq": b.seq, "root": b.root, "size": b.size} for b in manifest.batches],
            "disclosures": manifest.disclosures,
            "bodySha256": manifest.body_sha256,
            "createdAt": manifest.created_at,
        },
    }


def sign_manifest(
    manifest: ExchangeManifest, account: LocalAccount, chain_id: int, anchor_address: str
) -> str:
    """EIP-712 signature (0x hex, 65 bytes) of ``manifest`` by ``account``."""
    signed = account.sign_typed_data(
        full_message=manifest_typed_data(manifest, chain_id, anchor_address)
    )
    return "0x" + bytes(signed.signature).hex()


def recover_manifest_signer(
    manifest: ExchangeManifest, signature: str, chain_id: int, anchor_address: str
) -> str:
    """The checksummed address whose key produced ``signature`` over ``manifest``."""
    message = encode_typed_data(
        full_message=manifest_typed_data(manifest, chain_id, anchor_address)
    )
    recovered: str = Account.recover_message(message, signature=signature)
    return recovered


def trailer_line(
    manifest: ExchangeManifest, account: LocalAccount, chain_id: int, anchor_address: str
) -> bytes:
    """The package's last line: the manifest with its signature."""
    trailer = {
        "manifest": manifest.to_json(),
        "domain": eip712_domain(chain_id, anchor_address),
        "signer": account.address,
        "signature": sign_manifest(manifest, account, chain_id, anchor_address),
    }
    return json.dumps(trailer, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


# --------------------------------------------------------------------------- export


@dataclass(frozen=True, slots=True)
class _ExportBatch:
    seq: int
    root: bytes
    size: int
    tx_hash: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export will contain, fixed (and checked) before the first byte is streamed."""

    region: int
    from_seq: int
    to_seq: int
    chain_id: int
    anchor_address: str
    signer: LocalAccount
    batches: tuple[_ExportBatch, ...]

    @property
    def filename(self) -> str:
        """A download name for the package."""
        return f"credit-ledger-{self.region}-{self.from_seq}-{self.to_seq}.jsonl"


def plan_export(services: Any, from_seq: int, to_seq: int | None) -> ExportPlan:
    """The anchored batches of ``[from_seq, to_seq]``, clipped to what this node can disclose.

    The manifest never claims a range the package does not cover; an importer that wants
    more (an integrity check of everything on chain) counts the rest as missing. NotFound
    if no batch qualifies.
    """
    if to_seq is not None and to_seq < from_seq:
        raise BadRequest(f"to_seq {to_seq} is below from_seq {from_seq}")
    signer = services.signer
    if signer is None:
        raise Unavailable("exporting needs the region's signer key to sign the manifest")
    deployment = services.chain.deployment
    query = select(batches).where(batches.c.seq >= from_seq).order_by(batches.c.seq)
    if to_seq is not None:
        query = query.where(batches.c.seq <= to_seq)
    with services.db.read() as conn:
        rows = conn.execute(query).all()
    # The range starts at this database's first batch at or after from_seq (a database
    # restored or started late may not hold the region's earliest batches) and stops
    # before the first batch that is missing or not yet anchored.
    chosen: list[Any] = []
    for row in rows:
        if row.state != "anchored" or (chosen and row.seq != chosen[-1].seq + 1):
            break
        chosen.append(row)
    if not chosen:
        raise NotFound(
            f"no anchored batch of region {services.settings.region} from seq {from_seq}",
            from_seq=from_seq,
        )
    planned = tuple(
        _ExportBatch(
            seq=row.seq,
            root=bytes(row.root),
            size=row.size,
            tx_hash=_anchoring_tx(services, row),
            block_number=int(row.block_number or 0),
        )
        for row in chosen
    )
    return ExportPlan(
        region=services.settings.region,
        from_seq=planned[0].seq,
        to_seq=planned[-1].seq,
        chain_id=deployment.chain_id,
        anchor_address=deployment.anchor,
        signer=signer,
        batches=planned,
    )


def _anchoring_tx(services: Any, row: Any) -> bytes:
    """The batch's anchoring transaction hash; found through its event if not recorded."""
    if row.tx_hash:
        return bytes.fromhex(str(row.tx_hash).removeprefix("0x"))
    region = services.settings.region
    events = services.chain.rpc(
        "getLogs",
        lambda: services.chain.anchor.batches_anchored(
            region,
            from_seq=row.seq,
            to_seq=row.seq,
            from_block=row.block_number,
            to_block=row.block_number if row.block_number is not None else "latest",
        ),
    )
    if not events:
        raise Unavailable(f"the anchoring transaction of batch {row.seq} is not found on chain")
    return bytes.fromhex(str(events[0].tx_hash).removeprefix("0x"))


def _batch_disclosure_lines(conn: Connection, plan: ExportPlan, batch: _ExportBatch) -> list[bytes]:
    rv = record_versions
    rows = conn.execute(
        select(
            rv.c.leaf_index,
            rv.c.record_key,
            rv.c.version,
            rv.c.status,
            rv.c.prev_leaf,
            rv.c.commitment,
            rv.c.leaf_hash,
            rv.c.salt,
            rv.c.record_json,
        )
        .where(rv.c.batch_seq == batch.seq)
        .order_by(rv.c.leaf_index)
    ).all()
    if [r.leaf_index for r in rows] != list(range(batch.size)):
        raise RuntimeError(f"batch {batch.seq}: stored leaves do not match its size {batch.size}")
    tree = ledger.MerkleTree(bytes(r.leaf_hash) for r in rows)
    if tree.root != batch.root:
        raise RuntimeError(f"batch {batch.seq}: stored leaves do not fold to its root")
    chain = ledger.ChainAnchor(
        chain_id=plan.chain_id,
        anchor_contract=plan.anchor_address,
        tx_hash=batch.tx_hash,
        block_number=batch.block_number,
    ).to_json()
    batch_ref = {
        "region": plan.region,
        "seq": batch.seq,
        "root": batch.root.hex(),
        "size": batch.size,
    }
    # The line is the RFC 8785 form of {"receipt": …, "record": …, "salt": …}, assembled
    # rather than canonicalised: the stored record JSON is canonical already (intake stores
    # canonical(record)), the parts shared by the batch are canonicalised once, and every
    # other member is a lower-case hex string or a small integer, whose JCS form is plain.
    # Members appear in JCS order (UTF-16 code unit order of the names). Measured: the
    # exporter spent half its time in ledger.canonicalize of each disclosure.
    head = (
        b'{"receipt":{"batch":'
        + ledger.canonicalize(batch_ref)
        + b',"chain":'
        + ledger.canonicalize(chain)
        + b',"format":"credit-ledger/receipt/v1","hash_alg":"sha256","leaf":{"commitment":"'
    )
    names = {
        code: ledger.LeafStatus(code).status_name.encode() for code in {r.status for r in rows}
    }
    lines = []
    for r in rows:
        proof = '","'.join(node.hex() for node in tree.inclusion_proof(r.leaf_index))
        lines.append(
            b"".join(
                (
                    head,
                    bytes(r.commitment).hex().encode(),
                    b'","index":',
                    str(r.leaf_index).encode(),
                    b',"prev_leaf":"',
                    bytes(r.prev_leaf).hex().encode(),
                    b'","record_key":"',
                    bytes(r.record_key).hex().encode(),
                    b'","status":"',
                    names[r.status],
                    b'","version":',
                    str(r.version).encode(),
                    b'},"proof":[' + (b'"' + proof.encode() + b'"' if proof else b"") + b"]},",
                    b'"record":',
                    r.record_json.encode("utf-8"),
                    b',"salt":"',
                    bytes(r.salt).hex().encode(),
                    b'"}\n',
                )
            )
        )
    return lines


def stream_package(services: Any, plan: ExportPlan) -> Iterator[bytes]:
    """The package's bytes: disclosure lines batch by batch, then the signed trailer.

    Each batch is read in its own short transaction, so a large range never holds one open;
    anchored batches never change, so the package is consistent all the same.
    """
    body_hash = hashlib.sha256()
    count = 0
    for batch in plan.batches:
        with services.db.read() as conn:
            lines = _batch_disclosure_lines(conn, plan, batch)
        for start in range(0, len(lines), _EXPORT_LINES_PER_YIELD):
            chunk = b"".join(lines[start : start + _EXPORT_LINES_PER_YIELD])
            body_hash.update(chunk)
            yield chunk
        count += len(lines)
    manifest = ExchangeManifest(
        region=plan.region,
        from_seq=plan.from_seq,
        to_seq=plan.to_seq,
        batches=tuple(BatchCommitment(b.seq, b.root, b.size) for b in plan.batches),
        disclosures=count,
        body_sha256=body_hash.digest(),
        created_at=int(time.time()),
    )
    yield trailer_line(manifest, plan.signer, plan.chain_id, plan.anchor_address)
    _log.info(
        "package exported",
        extra={"from_seq": plan.from_seq, "to_seq": plan.to_seq, "disclosures": count},
    )


# --------------------------------------------------------------------------- verification


_HeadRequest = tuple[list[tuple[int, bytes]], list["Future[RecordHead]"]]


class _PrefetchingReader:
    """AnchorReader over the node's gateway that reads many record heads per round trip.

    Heads are fetched for one chunk of disclosures with a single JSON-RPC batch, used for
    that chunk only, and dropped: heads move, batch roots (cached by the gateway) do not.
    """

    def __init__(self, gateway: Any) -> None:
        deployment = gateway.deployment
        self._gateway = gateway
        self.chain_id: int = deployment.chain_id
        self.anchor_address: str = deployment.anchor
        self._heads: dict[tuple[int, bytes], RecordHead] = {}

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """``batchOf``, cached by the gateway once anchored."""
        batch: AnchoredBatch = self._gateway.batch_of(region, seq)
        return batch

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """``headOf``, from the current chunk's prefetch when there."""
        head = self._heads.get((region, record_key))
        if head is None:
            head = self._gateway.head_of(region, record_key)
        return head

    def prefetch_heads(self, keys: Iterable[tuple[int, bytes]]) -> None:
        """Replace the prefetched heads with those of ``keys`` (one JSON-RPC batch)."""
        self.use_heads(self.request_heads(keys))

    def request_heads(self, keys: Iterable[tuple[int, bytes]]) -> _HeadRequest:
        """Send the reads of ``keys``' heads without waiting for them (see ``use_heads``)."""
        wanted = sorted(set(keys))
        # The gateway's HeadReader sends them as one JSON-RPC batch over a lean connection:
        # through web3's provider the batch cost more CPU than verifying the chunk.
        return wanted, [self._gateway.heads.submit(region, key) for region, key in wanted]

    def use_heads(self, requested: _HeadRequest) -> None:
        """Wait for heads asked for with ``request_heads``; they replace the previous ones."""
        wanted, futures = requested
        self._heads = dict(zip(wanted, self._gateway.heads.wait(futures), strict=True))


@dataclass
class _BatchTally:
    """What the package and the chain say about one batch of the range."""

    seq: int
    claimed: BatchCommitment | None = None
    chain: AnchoredBatch | None = None
    covered: set[int] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    anchoring_tx: bytes | None = None  # from the BatchAnchored event, looked up once

    @property
    def anchored(self) -> bool:
        return self.chain is not None and self.chain.size > 0

    @property
    def matches_chain(self) -> bool:
        return (
            self.anchored
            and self.claimed is not None
            and self.chain is not None
            and self.claimed.root == self.chain.root
            and self.claimed.size == self.chain.size
        )

    @property
    def missing(self) -> int:
        return self.chain.size - len(self.covered) if self.anchored and self.chain else 0

    @property
    def fully_verified(self) -> bool:
        """Matches the chain, and every leaf has exactly one authentic disclosure."""
        if not self.matches_chain or self.chain is None:
            return False
        authentic = sum(self.counts[o] for o in _AUTHENTIC)
        return self.missing == 0 and authentic == sum(self.counts.values()) == self.chain.size


@dataclass
class _Tally:
    """Counts and the reported items of one verification run."""

    counts: Counter[str] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)
    items_truncated: bool = False

    def add_item(self, item: dict[str, Any]) -> None:
        if len(self.items) < MAX_REPORTED_ITEMS:
            self.items.append(item)
        else:
            self.items_truncated = True


@dataclass(frozen=True, slots=True)
class _Trailer:
    manifest: ExchangeManifest
    domain: object
    signer: str
    signature: str
    body_sha256: bytes
    body_end: int  # byte offset where the trailer line starts
    disclosure_lines: int


def _read_trailer(package: IO[bytes]) -> _Trailer:
    """Pass 1: hash the body, find and parse the trailer (the last non-empty line)."""
    package.seek(0)
    body_hash = hashlib.sha256()
    held: bytes | None = None  # last non-empty line, not yet known to be body or trailer
    held_at = 0
    blanks: list[bytes] = []
    lines = 0
    offset = 0
    for line in package:
        if line.strip():
            if held is not None:
                body_hash.update(held)
                for blank in blanks:
                    body_hash.update(blank)
                lines += 1
            held, held_at, blanks = line, offset, []
        elif held is not None:
            blanks.append(line)
        else:
            body_hash.update(line)  # blank lines before any content are body bytes too
        offset += len(line)
    if held is None:
        raise PackageRejected("the package is empty: no trailer line")
    try:
        trailer = json.loads(held)
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, too deep, huge ints
        raise PackageRejected(
            f"the last line is not a JSON trailer: {e}", field="trailer"
        ) from None
    members = _members(trailer, "trailer", {"manifest", "domain", "signer", "signature"})
    manifest = ExchangeManifest.from_json(members["manifest"])
    signer, signature = members["signer"], members["signature"]
    if type(signer) is not str or not _ADDRESS.match(signer):
        raise PackageRejected("trailer.signer: must be a 0x address", field="trailer.signer")
    if type(signature) is not str or not _SIGNATURE.match(signature):
        raise PackageRejected(
            "trailer.signature: must be 65 bytes of 0x hex", field="trailer.signature"
        )
    return _Trailer(
        manifest=manifest,
        domain=members["domain"],
        signer=signer,
        signature=signature,
        body_sha256=body_hash.digest(),
        body_end=held_at,
        disclosure_lines=lines,
    )


def _same_domain(domain: object, expected: dict[str, Any]) -> bool:
    if not isinstance(domain, dict) or set(domain) != set(expected):
        return False
    contract = domain["verifyingContract"]
    return (
        all(domain[name] == expected[name] for name in ("name", "version", "chainId"))
        and isinstance(contract, str)
        and contract.lower() == expected["verifyingContract"].lower()
    )


def _check_signature(services: Any, trailer: _Trailer) -> None:
    """Step 1 of the module docstring: domain, signature, and the signer on chain now."""
    deployment = services.chain.deployment
    expected = eip712_domain(deployment.chain_id, deployment.anchor)
    if not _same_domain(trailer.domain, expected):
        raise PackageRejected(
            "the package is signed for another EIP-712 domain (chain or contract) than this node's",
            expected_domain=expected,
            domain=trailer.domain,
        )
    raw = bytes.fromhex(trailer.signature[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28) or not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        # Only the canonical encoding (v 27/28, low s, as EIP-2 and OpenZeppelin's ECDSA
        # require): eth-keys also recovers v = 59, 91, 155 (read as EIP-155 values) to the
        # same signer, so a package could otherwise change bytes and still verify.
        raise PackageRejected(
            "the manifest signature is not canonical (v must be 27 or 28, s in the lower half)"
        )
    try:
        recovered = recover_manifest_signer(
            trailer.manifest, trailer.signature, deployment.chain_id, deployment.anchor
        )
    except Exception:  # eth-keys raises several types for malformed signatures
        raise PackageRejected("the manifest signature does not decode") from None
    if recovered.lower() != trailer.signer.lower():
        raise PackageRejected(
            "the manifest signature does not recover to the stated signer "
            "(the manifest was altered or signed by another key)",
            signer=trailer.signer,
            recovered=recovered,
        )
    region = trailer.manifest.region
    if not services.chain.rpc(
        "isSigner", lambda: services.chain.consortium.is_signer(recovered, region)
    ):
        raise PackageRejected(
            f"{recovered} is not a signer of active region {region} in the Consortium",
            signer=recovered,
            region=region,
        )


def _attribution(obj: object) -> tuple[int | None, int | None, int | None, str | None, int | None]:
    """(region, seq, index, record_key, version) claimed by a disclosure, however malformed."""

    def dig(*path: str) -> object:
        node: object = obj
        for name in path:
            if not isinstance(node, dict):
                return None
            node = node.get(name)
        return node

    def as_int(value: object) -> int | None:
        return value if type(value) is int else None

    key = dig("receipt", "leaf", "record_key")
    return (
        as_int(dig("receipt", "batch", "region")),
        as_int(dig("receipt", "batch", "seq")),
        as_int(dig("receipt", "leaf", "index")),
        key if isinstance(key, str) and _HEX32.match(key) else None,
        as_int(dig("receipt", "leaf", "version")),
    )


_VERDICT_OUTCOMES: Final = {
    VerdictStatus.VALID: "verified",
    VerdictStatus.SUPERSEDED: "superseded",
    VerdictStatus.REVOKED: "revoked",
    VerdictStatus.WRONG_REGION: "wrong_region",
    VerdictStatus.UNANCHORED: "unanchored",
}


@dataclass
class _Line:
    number: int
    raw: bytes
    obj: Any = None
    disclosure: ledger.Disclosure | None = None
    error: str | None = None
    field: str | None = None


class _Verification:
    """One run of steps 2-4 of the module docstring over a package whose trailer checked out."""

    def __init__(
        self,
        services: Any,
        trailer: _Trailer,
        *,
        check_from: int,
        check_to: int,
        store: bool,
        report_id: int | None,
    ) -> None:
        self.services = services
        self.trailer = trailer
        self.manifest = trailer.manifest
        self.region = trailer.manifest.region
        self.check_from = check_from
        self.check_to = check_to
        self.own_region: int = services.settings.region
        self.store = store and self.region != self.own_region
        self.report_id = report_id
        self.reader = _PrefetchingReader(services.chain)
        self.tally = _Tally()
        self.problems: list[str] = []
        self.batches: dict[int, _BatchTally] = {}
        self.stored = 0
        self._plan_batches(check_from, check_to)

    def _plan_batches(self, check_from: int, check_to: int) -> None:
        manifest = self.manifest
        next_seq = self.services.chain.next_seq(self.region)
        for seq in range(check_from, min(check_to, next_seq - 1) + 1):
            self.batches[seq] = _BatchTally(seq)
        for claimed in manifest.batches:
            if not manifest.from_seq <= claimed.seq <= manifest.to_seq:
                self.problems.append(
                    f"manifest batch {claimed.seq} lies outside its range "
                    f"[{manifest.from_seq}, {manifest.to_seq}]"
                )
            tally = self.batches.setdefault(claimed.seq, _BatchTally(claimed.seq))
            if tally.claimed is not None:
                self.problems.append(f"manifest lists batch {claimed.seq} twice")
                continue
            tally.claimed = claimed
        for seq in sorted(self.batches):
            tally = self.batches[seq]
            tally.chain = self.reader.batch_of(self.region, seq)
            if not tally.anchored:
                tally.chain = None
                tally.problems.append("not anchored on chain")
            elif tally.claimed is None:
                tally.problems.append("anchored on chain but not in the manifest")
            elif tally.claimed.root != tally.chain.root:
                tally.problems.append(
                    f"manifest root {tally.claimed.root.hex()} differs from the chain's "
                    f"{tally.chain.root.hex()}"
                )
            elif tally.claimed.size != tally.chain.size:
                tally.problems.append(
                    f"manifest size {tally.claimed.size} differs from the chain's "
                    f"{tally.chain.size}"
                )
        if self.trailer.body_sha256 != manifest.body_sha256:
            self.problems.append(
                f"body hash {self.trailer.body_sha256.hex()} differs from the manifest's "
                f"{manifest.body_sha256.hex()}: the disclosures were altered in transit"
            )
        if self.trailer.disclosure_lines != manifest.disclosures:
            self.problems.append(
                f"{self.trailer.disclosure_lines} disclosure lines, the manifest says "
                f"{manifest.disclosures}"
            )

    # -- per-disclosure

    def run(self, package: IO[bytes]) -> None:
        package.seek(0)
        chunk: list[_Line] = []
        waiting: tuple[list[_Line], _HeadRequest] | None = None
        offset, number = 0, 0
        for raw in package:
            if offset >= self.trailer.body_end:
                break
            offset += len(raw)
            number += 1
            if not raw.strip():
                continue
            chunk.append(_Line(number, raw))
            if len(chunk) >= _CHUNK_LINES:
                # Pipelined: the chain answers this chunk's head reads while the previous
                # chunk is classified.
                started = self._start_chunk(chunk)
                if waiting is not None:
                    self._finish_chunk(*waiting)
                waiting, chunk = started, []
        if chunk:
            started = self._start_chunk(chunk)
            if waiting is not None:
                self._finish_chunk(*waiting)
            waiting = started
        if waiting is not None:
            self._finish_chunk(*waiting)
        for seq in sorted(self.batches):
            tally = self.batches[seq]
            if not tally.anchored or tally.chain is None:
                continue
            missing = [i for i in range(tally.chain.size) if i not in tally.covered]
            self.tally.counts["missing"] += len(missing)
            for index in missing:
                self.tally.add_item(
                    {
                        "outcome": "missing",
                        "record_key": None,
                        "version": None,
                        "seq": seq,
                        "index": index,
                        "failed_step": None,
                        "step_name": "package",
                        "reason": "the chain holds this leaf; the package has no disclosure of it",
                    }
                )

    def _start_chunk(self, chunk: list[_Line]) -> tuple[list[_Line], _HeadRequest]:
        """Parse a chunk and send its head reads."""
        for line in chunk:
            try:
                line.obj = json.loads(line.raw)
            except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, too deep, huge ints
                line.error, line.field = f"not JSON: {e}", "line"
                continue
            try:
                line.disclosure = ledger.Disclosure.from_json(line.obj)
            except (ReceiptError, RecordError) as e:
                line.error, line.field = e.reason, e.field
        requested = self.reader.request_heads(
            (line.disclosure.receipt.batch.region, line.disclosure.receipt.leaf.record_key)
            for line in chunk
            if line.disclosure is not None
        )
        return chunk, requested

    def _finish_chunk(self, chunk: list[_Line], requested: _HeadRequest) -> None:
        """Verify and classify a parsed chunk once its heads are in."""
        self.reader.use_heads(requested)
        rows: list[dict[str, Any]] = []
        for line in chunk:
            outcome, item = self._classify(line)
            self.tally.counts[outcome] += 1
            if outcome != "verified":
                self.tally.add_item(item)
            if self.store and outcome in _AUTHENTIC and line.disclosure is not None:
                rows.append(self._foreign_row(line, outcome))
        if rows:
            self._store(rows)

    def _classify(self, line: _Line) -> tuple[str, dict[str, Any]]:
        region, seq, index, key, version = _attribution(line.obj)
        item: dict[str, Any] = {
            "outcome": None,
            "line": line.number,
            "record_key": key,
            "version": version,
            "seq": seq,
            "index": index,
        }
        if line.disclosure is None:
            outcome = "tampered"
            item.update(
                failed_step=0,
                step_name="parse",
                reason=f"{line.field}: {line.error}" if line.field else line.error,
            )
        else:
            verdict = ledger.verify_disclosure(line.disclosure, self.reader)
            outcome = _VERDICT_OUTCOMES.get(verdict.status, "tampered")
            item.update(
                failed_step=verdict.failed_step,
                step_name=verdict.step_name,
                reason=verdict.reason,
                expected=verdict.expected,
                computed=verdict.computed,
                leaf_status=verdict.leaf_status,
                head_version=verdict.head_version,
                head_status=verdict.head_status,
            )
        tally = self.batches.get(seq) if region == self.region and seq is not None else None
        attributable = (
            tally is not None
            and tally.anchored
            and tally.chain is not None
            and index is not None
            and 0 <= index < tally.chain.size
        )
        # Package-level rules a chain verdict cannot see: the signed region and range, and
        # one disclosure per leaf (a duplicate could otherwise hide an omitted leaf).
        if outcome in _AUTHENTIC:
            if region != self.region:
                outcome = "wrong_region"
                item.update(
                    failed_step=None,
                    step_name="package",
                    reason=f"a disclosure of region {region} in a package of region {self.region}",
                )
            elif tally is None or tally.claimed is None:
                outcome = "tampered"
                item.update(
                    failed_step=None,
                    step_name="package",
                    reason=f"batch {seq} is not in the signed manifest",
                )
            elif attributable and index in tally.covered:
                outcome = "tampered"
                item.update(
                    failed_step=None,
                    step_name="package",
                    reason=f"a second disclosure of leaf {index} of batch {seq}",
                )
            elif attributable and (wrong := self._wrong_pointer(line, tally)) is not None:
                outcome = "tampered"
                item.update(failed_step=None, step_name="anchor", reason=wrong)
        if attributable:
            assert tally is not None and index is not None
            tally.covered.add(index)
        if tally is not None:
            tally.counts[outcome] += 1
        item["outcome"] = outcome
        return outcome, item

    def _wrong_pointer(self, line: _Line, tally: _BatchTally) -> str | None:
        """Why the receipt's transaction or block is not where the chain anchored the batch.

        DESIGN §5 verification proves the leaf against ``batchOf``; the receipt's tx_hash and
        block_number are pointers it does not read. A package must not carry false ones: a
        reader following them would look at some other transaction.
        """
        assert line.disclosure is not None and tally.chain is not None
        pointer = line.disclosure.receipt.chain
        if pointer.block_number != tally.chain.block_number:
            return (
                f"the receipt names block {pointer.block_number}; the chain anchored batch "
                f"{tally.seq} in block {tally.chain.block_number}"
            )
        if tally.anchoring_tx is None:
            chain, region, block = self.services.chain, self.region, tally.chain.block_number
            events = chain.rpc(
                "getLogs",
                lambda: chain.anchor.batches_anchored(
                    region, from_seq=tally.seq, to_seq=tally.seq, from_block=block, to_block=block
                ),
            )
            if not events:
                return f"no BatchAnchored event of batch {tally.seq} in block {block}"
            tally.anchoring_tx = bytes.fromhex(str(events[0].tx_hash).removeprefix("0x"))
        if pointer.tx_hash != tally.anchoring_tx:
            return (
                f"the receipt names transaction 0x{pointer.tx_hash.hex()}; batch {tally.seq} "
                f"was anchored in 0x{tally.anchoring_tx.hex()}"
            )
        return None

    # -- storage of other regions' disclosures

    def _foreign_row(self, line: _Line, outcome: str) -> dict[str, Any]:
        disclosure = line.disclosure
        assert disclosure is not None
        receipt = disclosure.receipt
        return {
            "region": receipt.batch.region,
            "seq": receipt.batch.seq,
            "leaf_index": receipt.leaf_index,
            "record_key": receipt.leaf.record_key,
            "version": receipt.leaf.version,
            "status": int(receipt.leaf.status),
            "uscc": disclosure.record.uscc,
            "record_type": disclosure.record.record_type.type_name,
            "leaf_hash": receipt.leaf_hash,
            "disclosure_json": ledger.canonicalize(disclosure.to_json()).decode("utf-8"),
            "verdict": outcome,
            "report_id": self.report_id,
            "stored_at": time.time(),
        }

    def _store(self, rows: list[dict[str, Any]]) -> None:
        db = self.services.db
        dialect = postgresql if db.dialect == "postgresql" else sqlite
        statement = dialect.insert(foreign_disclosures).on_conflict_do_nothing(
            index_elements=["region", "seq", "leaf_index"]
        )
        with db.write() as conn:
            conn.execute(statement, rows)
        self.stored += len(rows)

    # -- result

    def batch_reports(self) -> list[dict[str, Any]]:
        out = []
        for seq in sorted(self.batches):
            tally = self.batches[seq]
            chain = tally.chain
            out.append(
                {
                    "seq": seq,
                    "in_manifest": tally.claimed is not None,
                    "root": tally.claimed.root.hex() if tally.claimed else None,
                    "size": tally.claimed.size if tally.claimed else None,
                    "anchored": tally.anchored,
                    "chain_root": chain.root.hex() if chain else None,
                    "chain_size": chain.size if chain else None,
                    "matches_chain": tally.matches_chain,
                    "disclosed": sum(tally.counts.values()),
                    **{o: tally.counts[o] for o in OUTCOMES if o != "missing"},
                    "missing": tally.missing,
                    "fully_verified": self.package_ok and tally.fully_verified,
                    "problems": tally.problems,
                    "endorsement": None,
                }
            )
        return out

    @property
    def package_ok(self) -> bool:
        """Body hash, count and range checks passed (step 2, package level)."""
        return not self.problems


def _finish(
    run: _Verification, trailer: _Trailer, package_info: dict[str, Any], *, endorse: bool
) -> dict[str, Any]:
    """The report body of a finished run (endorsing first, if asked)."""
    batch_reports = run.batch_reports()
    endorsed = _endorse(run.services, run.region, batch_reports) if endorse else 0
    counts = {o: run.tally.counts[o] for o in OUTCOMES}
    clean = (
        run.package_ok
        and not any(b["problems"] for b in batch_reports)
        and all(counts[o] == 0 for o in ("tampered", "unanchored", "wrong_region", "missing"))
    )
    return {
        "region": run.region,
        "from_seq": run.check_from,
        "to_seq": run.check_to,
        "package": package_info,
        "counts": counts,
        "disclosures": trailer.disclosure_lines,
        "leaves": sum(b["chain_size"] or 0 for b in batch_reports),
        "clean": clean,
        "problems": run.problems,
        "batches": batch_reports,
        "endorsed": endorsed,
        "stored_disclosures": run.stored,
        "items": run.tally.items,
        "items_truncated": run.tally.items_truncated,
    }


def _endorse(services: Any, region: int, batch_reports: list[dict[str, Any]]) -> int:
    """Endorse every fully verified batch not yet endorsed by this region; return how many."""
    own = services.settings.region
    endorsed = 0
    for batch in batch_reports:
        if not batch["fully_verified"]:
            batch["endorsement"] = {"status": "not_eligible"}
            continue
        if region == own:
            batch["endorsement"] = {"status": "own_region"}
            continue
        if services.signer is None:
            batch["endorsement"] = {"status": "failed", "error": "this node has no signer key"}
            continue
        anchor = services.chain.anchor
        seq = batch["seq"]
        try:
            endorsers = services.chain.rpc("endorsersOf", partial(anchor.endorsers_of, region, seq))
            if own in endorsers:
                batch["endorsement"] = {"status": "already_endorsed", "endorsers": endorsers}
                continue
            root = bytes.fromhex(batch["chain_root"])
            tx = services.chain.rpc("endorse", partial(anchor.endorse, region, seq, root))
        except ContractError as e:
            status = "already_endorsed" if e.name == "AlreadyEndorsed" else "failed"
            batch["endorsement"] = {"status": status, "error": str(e)}
            continue
        except ChainError as e:
            batch["endorsement"] = {"status": "failed", "error": str(e)}
            continue
        endorsed += 1
        batch["endorsement"] = {
            "status": "endorsed",
            "tx_hash": tx.tx_hash,
            "block_number": tx.block_number,
        }
        _log.info("batch endorsed", extra={"region": region, "seq": seq, "tx_hash": tx.tx_hash})
    return endorsed


def verify_package(
    services: Any,
    package: IO[bytes],
    *,
    report_id: int | None = None,
    expected_region: int | None = None,
    check_from: int | None = None,
    check_to: int | None = None,
    store: bool = False,
    endorse: bool = False,
) -> dict[str, Any]:
    """Verify a package (a seekable binary file) against the chain; return the report body.

    ``expected_region`` and ``check_from``/``check_to`` (integrity checks) make the range
    checked against the chain the requested one rather than the manifest's, so a peer that
    answers with a shorter range has the rest counted as missing. Raises PackageRejected
    (step 1) and ChainError.
    """
    trailer = _read_trailer(package)
    manifest = trailer.manifest
    package_info: dict[str, Any] = {
        "signer": trailer.signer,
        "manifest": manifest.to_json(),
        "disclosure_lines": trailer.disclosure_lines,
        "body_sha256": trailer.body_sha256.hex(),
    }
    if expected_region is not None and manifest.region != expected_region:
        raise PackageRejected(
            f"asked for region {expected_region}'s package, got one of region {manifest.region}",
            package=package_info,
        )
    try:
        _check_signature(services, trailer)
    except PackageRejected as e:
        e.details.setdefault("package", package_info)
        raise
    package_info["signature_ok"] = True
    package_info["body_hash_ok"] = trailer.body_sha256 == manifest.body_sha256
    run = _Verification(
        services,
        trailer,
        check_from=manifest.from_seq if check_from is None else check_from,
        check_to=manifest.to_seq if check_to is None else check_to,
        store=store,
        report_id=report_id,
    )
    run.run(package)
    return _finish(run, trailer, package_info, endorse=endorse)


def verify_absent_package(
    services: Any, region: int, check_from: int, check_to: int
) -> dict[str, Any]:
    """The report when a region exported nothing for the range: every anchored leaf missing."""
    empty = hashlib.sha256(b"").digest()
    trailer = _Trailer(
        manifest=ExchangeManifest(region, check_from, check_to, (), 0, empty, 0),
        domain=None,
        signer="",
        signature="",
        body_sha256=empty,
        body_end=0,
        disclosure_lines=0,
    )
    run = _Verification(
        services, trailer, check_from=check_from, check_to=check_to, store=False, report_id=None
    )
    run.problems.append(f"region {region}'s node exported no package for the range")
    run.run(io.BytesIO(b""))
    return _finish(run, trailer, {"signer": None, "manifest": None}, endorse=False)


# --------------------------------------------------------------------------- reports


def start_report(
    services: Any,
    kind: str,
    principal: Principal,
    *,
    region: int | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
) -> int:
    """Insert a ``running`` report row and return its id."""
    with services.db.write() as conn:
        report_id: int = conn.execute(
            integrity_reports.insert()
            .values(
                kind=kind,
                region=region,
                from_seq=from_seq,
                to_seq=to_seq,
                status="running",
                requested_by=principal.name,
                created_at=time.time(),
            )
            .returning(integrity_reports.c.id)
        ).scalar_one()
    return report_id


def finish_report(
    services: Any, report_id: int, status: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Store the final report; return it with its id, kind, status and times."""
    counts = body.get("counts") or {}
    now = time.time()
    with services.db.write() as conn:
        row = conn.execute(
            select(integrity_reports).where(integrity_reports.c.id == report_id)
        ).one()
        full = {
            "id": report_id,
            "kind": row.kind,
            "status": status,
            "checked_by": services.settings.region,
            "requested_by": row.requested_by,
            "created_at": row.created_at,
            "finished_at": now,
            **body,
        }
        conn.execute(
            update(integrity_reports)
            .where(integrity_reports.c.id == report_id)
            .values(
                status=status,
                region=body.get("region", row.region),
                from_seq=body.get("from_seq", row.from_seq),
                to_seq=body.get("to_seq", row.to_seq),
                finished_at=now,
                endorsed=int(body.get("endorsed") or 0),
                report_json=json.dumps(full, ensure_ascii=False, separators=(",", ":")),
                **{o: int(counts.get(o, 0)) for o in OUTCOMES},
            )
        )
    return full


def report_json(row: Any) -> dict[str, Any]:
    """A stored report (the full JSON when finished, a summary while running)."""
    if row.report_json:
        stored: dict[str, Any] = json.loads(row.report_json)
        return stored
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "region": row.region,
        "from_seq": row.from_seq,
        "to_seq": row.to_seq,
        "requested_by": row.requested_by,
        "created_at": row.created_at,
    }


def run_stored(
    services: Any,
    report_id: int,
    package: IO[bytes],
    **options: Any,
) -> dict[str, Any]:
    """``verify_package`` with its outcome stored under ``report_id`` whatever happens."""
    try:
        body = verify_package(services, package, report_id=report_id, **options)
    except PackageRejected as e:
        e.details["report"] = finish_report(
            services, report_id, "rejected", {"reason": e.message, **e.details}
        )
        raise
    except (ChainError, NodeError) as e:
        finish_report(services, report_id, "failed", {"reason": str(e)})
        raise
    return finish_report(services, report_id, "completed", body)


def import_package(
    services: Any,
    principal: Principal,
    package: IO[bytes],
    *,
    endorse: bool = False,
    store: bool = True,
) -> dict[str, Any]:
    """``POST /v1/exchange/import``: verify, store the report (and disclosures), endorse."""
    report_id = start_report(services, "import", principal)
    report = run_stored(services, report_id, package, store=store, endorse=endorse)
    _log.info(
        "package imported",
        extra={
            "report_id": report_id,
            "region": report.get("region"),
            "counts": report.get("counts"),
            "endorsed": report.get("endorsed"),
        },
    )
    return report
