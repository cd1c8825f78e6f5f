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
   package is rejected outright (HTTP 422), and nothing of it counts: an integrity check
   without ``store`` verifies lines while the package downloads (``PackageStream``), but
   keeps those results only once the signature has verified and the manifest claims
   exactly the batches that verification assumed; nothing is stored before then.
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

How it runs (the report does not depend on it): a package of at least
``_PARALLEL_MIN_LINES`` disclosures is parsed and verified (step 3) in chunks by worker
processes, one per core, each reading its chunk's record heads from the chain itself; the
classification (the package rules, counts, items, storage) stays in this process, in line
order, so the report is the one a verification line by line gives. An integrity check
verifies while the package downloads (``PackageStream``) and keeps those results only if
the signed trailer bears out what they assumed.

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
import multiprocessing
import multiprocessing.context
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
from node_api.chain import _RpcConnection, decode_head
from node_api.db.exchange_schema import foreign_disclosures, integrity_reports
from node_api.db.tables import batches, record_versions
from node_api.errors import BadRequest, NodeError, NotFound, Unavailable
from node_api.processes import usable_cpus

__all__ = [
    "MANIFEST_FORMAT",
    "PACKAGE_MEDIA_TYPE",
    "OUTCOMES",
    "MAX_REPORTED_ITEMS",
    "BatchCommitment",
    "ExchangeManifest",
    "ExportPlan",
    "PackageRejected",
    "PackageStream",
    "VerificationFailed",
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
_CHUNK_LINES = 512  # disclosures per verification task, and per JSON-RPC batch of heads
_HEAD_BATCH = 1000  # eth_calls per JSON-RPC batch (Besu's default batch limit is 1024)
# Below this many disclosures a package is verified in the request's thread: starting
# worker processes costs more than they save.
_PARALLEL_MIN_LINES = 8192
_WORKERS = max(1, min(4, usable_cpus()))
# Each pool is _WORKERS processes: concurrent checks and imports (and downloads that a peer
# stalls) must not multiply them. A run that finds no free slot verifies in its own thread;
# the report is the same.
_MAX_POOLS = 1
_POOL_SLOTS = threading.BoundedSemaphore(_MAX_POOLS)
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


class VerificationFailed(NodeError):
    """A verification worker process died: the package was not verified (never a pass)."""

    status_code = 500
    code = "verification_failed"


class _OutsideSnapshot(Exception):
    """A worker met a batch that the run's snapshot lacks; the parent verifies that line."""


# A line's verification result, what _Verification._classify needs and no more (tuples
# pickle several times faster than objects, and a package has a million of them):
#   (line number, attribution, outcome, details, pointer, foreign row)
# attribution: _attribution(); outcome: "tampered" for an unparsable line, else the
# verdict's outcome, or None when the parent must verify the line (details is then the raw
# line); details: values of _DETAIL_FIELDS (three for a parse failure); pointer: the
# receipt's (block_number, tx_hash); foreign row: _foreign_row() of an authentic verdict
# when storing.
_Checked = tuple[
    int,
    tuple[int | None, int | None, int | None, str | None, int | None],
    str | None,
    Any,
    tuple[int, bytes] | None,
    dict[str, Any] | None,
]
_DETAIL_FIELDS: Final = (
    "failed_step",
    "step_name",
    "reason",
    "expected",
    "computed",
    "leaf_status",
    "head_version",
    "head_status",
)


@dataclass(frozen=True, slots=True)
class _ChainView:
    """What a worker process needs to verify disclosures against the chain on its own.

    ``batches`` is the run's snapshot of anchored batches (final once anchored); heads are
    read by the worker itself, fresh, for each chunk (``_worker_heads``).
    """

    rpc_url: str
    timeout: float
    chain_id: int
    anchor_address: str
    head_selector: bytes
    batches: dict[tuple[int, int], AnchoredBatch]
    store: bool


class _SnapshotReader:
    """AnchorReader over a run's batch snapshot and one chunk's heads.

    Without ``chain`` (in a worker) a batch outside the snapshot raises _OutsideSnapshot,
    so the parent verifies that line with its gateway instead.
    """

    __slots__ = ("chain_id", "anchor_address", "_batches", "_heads", "_chain")

    def __init__(
        self, view: _ChainView, heads: dict[tuple[int, bytes], RecordHead], chain: Any = None
    ) -> None:
        self.chain_id = view.chain_id
        self.anchor_address = view.anchor_address
        self._batches = view.batches
        self._heads = heads
        self._chain = chain

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        batch = self._batches.get((region, seq))
        if batch is None:
            if self._chain is None:
                raise _OutsideSnapshot
            batch = self._chain.batch_of(region, seq)
        return batch

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        return self._heads[(region, record_key)]


def _from_text(raw: bytes) -> ledger.Disclosure | None:
    """The disclosure of a line, parsed straight from its text where the ledger can (its C
    parser); None for any line it cannot parse, which then takes the JSON object path so
    that a rejection is reported in the same words."""
    from_text = getattr(ledger.Disclosure, "from_json_text", None)
    if from_text is None:
        try:
            return ledger.Disclosure.from_json(json.loads(raw))
        except (ValueError, RecursionError, ReceiptError, RecordError):
            return None
    try:
        disclosure: ledger.Disclosure = from_text(raw)
    except (ReceiptError, RecordError):
        return None
    return disclosure


def _check_chunk(
    view: _ChainView,
    lines: list[tuple[int, bytes]],
    read_heads: Callable[[list[tuple[int, bytes]]], list[RecordHead]],
    chain: Any = None,
) -> list[_Checked]:
    """Parse and verify (DESIGN §5 steps 1-4) a chunk of body lines; classification is the
    parent's. Heads of every parsed disclosure are read in one batch, as the sequential
    verifier did."""
    parsed: list[tuple[int, bytes, Any, ledger.Disclosure | None, str | None]] = []
    for number, raw in lines:
        disclosure = _from_text(raw)
        if disclosure is not None:
            receipt = disclosure.receipt
            # What _attribution reads from the JSON; a disclosure that parsed has exactly
            # these (integers are ints, hashes lower-case hex).
            attribution = (
                receipt.batch.region,
                receipt.batch.seq,
                receipt.leaf_index,
                receipt.leaf.record_key.hex(),
                receipt.leaf.version,
            )
            parsed.append((number, raw, attribution, disclosure, None))
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, too deep, huge ints
            parsed.append((number, raw, _attribution(None), None, f"line: not JSON: {e}"))
            continue
        try:
            disclosure = ledger.Disclosure.from_json(obj)
        except (ReceiptError, RecordError) as e:
            reason = f"{e.field}: {e.reason}" if e.field else e.reason
            parsed.append((number, raw, _attribution(obj), None, reason))
        else:
            parsed.append((number, raw, _attribution(obj), disclosure, None))
    wanted = sorted(
        {
            (disclosure.receipt.batch.region, disclosure.receipt.leaf.record_key)
            for _, _, _, disclosure, _ in parsed
            if disclosure is not None
        }
    )
    reader = _SnapshotReader(view, dict(zip(wanted, read_heads(wanted), strict=True)), chain)
    out: list[_Checked] = []
    for number, raw, attribution, disclosure, error in parsed:
        if disclosure is None:
            out.append((number, attribution, "tampered", (0, "parse", error), None, None))
            continue
        try:
            verdict = ledger.verify_disclosure(disclosure, reader)
        except _OutsideSnapshot:
            out.append((number, attribution, None, raw, None, None))
            continue
        outcome = _VERDICT_OUTCOMES.get(verdict.status, "tampered")
        details = (
            verdict.failed_step,
            verdict.step_name,
            verdict.reason,
            verdict.expected,
            verdict.computed,
            verdict.leaf_status,
            verdict.head_version,
            verdict.head_status,
        )
        pointer = (disclosure.receipt.chain.block_number, disclosure.receipt.chain.tx_hash)
        row = _foreign_row(disclosure) if view.store and outcome in _AUTHENTIC else None
        out.append((number, attribution, outcome, details, pointer, row))
    return out


def _foreign_row(disclosure: ledger.Disclosure) -> dict[str, Any]:
    """A ``foreign_disclosures`` row of an authentic disclosure (verdict, report and time
    are added by the run)."""
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
    }


# -- worker processes

_worker_view: _ChainView | None = None
_worker_rpc: _RpcConnection | None = None


def _init_worker(view: _ChainView) -> None:
    global _worker_view, _worker_rpc
    _worker_view = view
    _worker_rpc = _RpcConnection(view.rpc_url, view.timeout)


# Heads are read by init code run with eth_call (no "to": a simulated contract creation),
# which STATICCALLs CreditAnchor.headOf for each key and returns the answers' 128-byte
# words back to back: one eth_call reads _MULTICALL_HEADS heads. Measured on anvil: 5-6 µs
# of node CPU per head against 33-45 µs for one eth_call per head, which at a million
# records was a third of the two cores. The answers are the contract's own headOf; any
# failure or answer of the wrong length falls back to one eth_call per head.
# Arguments appended to the code: CreditAnchor address (word), region (word), keys.
#   PUSH2 CODELEN CODESIZE SUB  DUP1 PUSH2 CODELEN PUSH2 0x100 CODECOPY   args -> mem[0x100]
#   PUSH1 0x40 DUP2 SUB PUSH1 5 SHR  SWAP1 PUSH2 0x101 ADD                n, out = 0x101 + len
#   PUSH4 headOf PUSH1 0xe0 SHL PUSH1 0 MSTORE  PUSH2 0x120 MLOAD PUSH1 4 MSTORE  PUSH1 0
#   loop: JUMPDEST DUP3 DUP2 EQ PUSH2 end JUMPI                           while i < n
#     DUP1 PUSH1 5 SHL PUSH2 0x140 ADD MLOAD PUSH1 0x24 MSTORE           calldata key i
#     PUSH1 0x80 DUP2 PUSH1 7 SHL DUP4 ADD PUSH1 0x44 PUSH1 0 PUSH2 0x100 MLOAD GAS STATICCALL
#     ISZERO PUSH2 fail JUMPI  RETURNDATASIZE PUSH1 0x80 EQ ISZERO PUSH2 fail JUMPI
#     PUSH1 1 ADD PUSH2 loop JUMP
#   end: JUMPDEST POP PUSH1 1 SWAP1 SUB SWAP1 PUSH1 7 SHL PUSH1 1 ADD SWAP1 RETURN
#        mem[out - 1, 1 + n * 128]: a zero byte, then the heads. The answer is created code,
#        and EIP-3541 (London) refuses created code whose first byte is 0xEF: without the
#        zero byte a head leafHash starting with 0xEF failed the call (1 in 256 superseded
#        records, or chosen by a peer) and turned the multicall off for the worker.
#   fail: JUMPDEST PUSH1 0 DUP1 REVERT
_MULTICALL_CODE: Final = (
    bytes.fromhex("61007c38038061007c610100396040810360051c906101010163"),
    bytes.fromhex(
        "60e01b6000526101205160045260005b828114610068578060051b610140015160245260808160071b83"
        "0160446000610100515afa15610077573d608014156100775760010161002d565b50600190039060071b"
        "60010190f35b600080fd"
    ),
)
# The returned bytes count as created code, so EIP-170's 24,576-byte limit applies:
# 1 + 191 * 128 = 24,449.
_MULTICALL_HEADS = 191
_worker_multicall_failures = 0
_MULTICALL_GIVE_UP = 3  # consecutive failures before a worker reads one head per eth_call


def _multicall_heads(
    rpc: _RpcConnection, view: _ChainView, keys: list[tuple[int, bytes]]
) -> list[RecordHead]:
    """Heads of ``keys`` through the multicall code, one eth_call per ``_MULTICALL_HEADS``."""
    code = _MULTICALL_CODE[0] + view.head_selector + _MULTICALL_CODE[1]
    address = bytes(12) + bytes.fromhex(view.anchor_address.removeprefix("0x"))
    payloads, sizes = [], []
    start = 0
    while start < len(keys):
        region = keys[start][0]
        end = start
        while end < len(keys) and end - start < _MULTICALL_HEADS and keys[end][0] == region:
            end += 1
        group = b"".join(key for _, key in keys[start:end])
        payloads.append(code + address + region.to_bytes(32, "big") + group)
        sizes.append(end - start)
        start = end
    heads = []
    for start in range(0, len(payloads), _HEAD_BATCH):
        answers = rpc.eth_calls(None, payloads[start : start + _HEAD_BATCH])  # type: ignore[arg-type]
        for answer, size in zip(answers, sizes[start : start + _HEAD_BATCH], strict=True):
            if len(answer) != 1 + 128 * size or answer[0] != 0:
                raise ChainError(f"multicall answered {len(answer)} bytes for {size} heads")
            heads.extend(decode_head(answer[i : i + 128]) for i in range(1, len(answer), 128))
    return heads


def _worker_heads(keys: list[tuple[int, bytes]]) -> list[RecordHead]:
    global _worker_multicall_failures
    assert _worker_view is not None and _worker_rpc is not None
    if _worker_multicall_failures < _MULTICALL_GIVE_UP:
        try:
            heads = _multicall_heads(_worker_rpc, _worker_view, keys)
        except (ChainError, ValueError) as e:  # ValueError: a result that is not hex
            _worker_multicall_failures += 1
            _log.warning("head multicall failed; reading one head per eth_call", exc_info=e)
        else:
            _worker_multicall_failures = 0
            return heads
    selector, heads = _worker_view.head_selector, []
    for start in range(0, len(keys), _HEAD_BATCH):
        answers = _worker_rpc.eth_calls(
            _worker_view.anchor_address,
            [
                selector + region.to_bytes(32, "big") + key
                for region, key in keys[start : start + _HEAD_BATCH]
            ],
        )
        heads.extend(decode_head(data) for data in answers)
    return heads


def _check_chunk_in_worker(lines: list[tuple[int, bytes]]) -> list[_Checked]:
    """The worker processes' task: ``_check_chunk`` with the worker's own chain connection."""
    assert _worker_view is not None
    return _check_chunk(_worker_view, lines, _worker_heads)


_CHUNK_TASK: Callable[[list[tuple[int, bytes]]], list[_Checked]] = _check_chunk_in_worker


def _process_context() -> multiprocessing.context.BaseContext:
    # forkserver, not fork: the node process has threads (server, anchoring worker, head
    # reader) whose locks a forked child could inherit held. The server is started once,
    # with this module imported, so a pool starts in milliseconds.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["node_api.exchange"])
    return context


class _ChunkRunner:
    """Runs ``_check_chunk`` over chunks, in worker processes or (small packages) here.

    Results come back in submission order through futures; at most ``limit`` chunks are
    in flight, which bounds memory however large the package.
    """

    def __init__(self, view: _ChainView, gateway: Any, workers: int) -> None:
        self._view = view
        self._gateway = gateway
        self._slot = workers > 0 and _POOL_SLOTS.acquire(blocking=False)
        if not self._slot:
            workers = 0
        self._pool = (
            ProcessPoolExecutor(
                workers,
                mp_context=_process_context(),
                initializer=_init_worker,
                initargs=(view,),
            )
            if workers > 0
            else None
        )
        self.limit = 2 * workers + 2 if workers > 0 else 1

    def submit(self, lines: list[tuple[int, bytes]]) -> Future[list[_Checked]]:
        if self._pool is not None:
            try:
                return self._pool.submit(_CHUNK_TASK, lines)
            except BrokenProcessPool as e:  # a worker died while this thread was busy
                raise VerificationFailed(
                    f"a verification worker process died: the package was not verified ({e})"
                ) from e
        future: Future[list[_Checked]] = Future()
        try:
            future.set_result(self.here(lines))
        except Exception as e:
            future.set_exception(e)
        return future

    def here(self, lines: list[tuple[int, bytes]]) -> list[_Checked]:
        """``_check_chunk`` in this process, through the gateway (any batch, cached heads)."""
        return _check_chunk(self._view, lines, self._gateway.heads_of, self._gateway)

    @staticmethod
    def result(future: Future[list[_Checked]]) -> list[_Checked]:
        try:
            return future.result()
        except BrokenProcessPool as e:
            raise VerificationFailed(
                f"a verification worker process died: the package was not verified ({e})"
            ) from e

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self._slot:
                self._slot = False
                _POOL_SLOTS.release()


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


class _TrailerScan:
    """Pass 1, a line at a time: hash the body, hold the last non-empty line (the trailer).

    ``feed`` hands back each body line once a later non-empty line shows it is not the
    trailer, so a package can be verified while it is still arriving.
    """

    def __init__(self) -> None:
        self._body_hash = hashlib.sha256()
        self._held: bytes | None = None  # last non-empty line, not yet known body or trailer
        self._held_at = 0
        self._held_number = 0
        self._blanks: list[bytes] = []
        self._lines = 0
        self._offset = 0
        self._number = 0

    def feed(self, line: bytes) -> tuple[int, bytes] | None:
        """Take the next line (with its newline); return a body line (number, bytes), if any."""
        self._number += 1
        released = None
        if line.strip():
            if self._held is not None:
                self._body_hash.update(self._held)
                for blank in self._blanks:
                    self._body_hash.update(blank)
                self._lines += 1
                released = (self._held_number, self._held)
            self._held, self._held_at, self._held_number = line, self._offset, self._number
            self._blanks = []
        elif self._held is not None:
            self._blanks.append(line)
        else:
            self._body_hash.update(line)  # blank lines before any content are body bytes too
        self._offset += len(line)
        return released

    def trailer(self) -> _Trailer:
        """Parse the held line as the trailer (PackageRejected if it is not one)."""
        held = self._held
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
            body_sha256=self._body_hash.digest(),
            body_end=self._held_at,
            disclosure_lines=self._lines,
        )


def _read_trailer(package: IO[bytes]) -> _Trailer:
    """Pass 1 over a stored package: hash the body, find and parse the trailer."""
    package.seek(0)
    scan = _TrailerScan()
    for line in package:
        scan.feed(line)
    return scan.trailer()


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


def _body_lines(package: IO[bytes], body_end: int) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line before ``body_end``."""
    package.seek(0)
    offset, number = 0, 0
    for raw in package:
        if offset >= body_end:
            break
        offset += len(raw)
        number += 1
        if raw.strip():
            yield number, raw


def _chunks(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
        self.tally = _Tally()
        self.problems: list[str] = []
        self.batches: dict[int, _BatchTally] = {}
        self.stored = 0
        self._plan_batches(check_from, check_to)

    @classmethod
    def assumed(cls, services: Any, region: int, check_from: int, check_to: int) -> _Verification:
        """A run for a package whose manifest would claim exactly the anchored batches the
        chain holds for ``region`` in ``[check_from, check_to]`` (see ``PackageStream``)."""
        chain = services.chain
        last = min(check_to, chain.next_seq(region) - 1)
        claims = []
        for seq in range(check_from, last + 1):
            batch = chain.batch_of(region, seq)
            if batch.size > 0:
                claims.append(BatchCommitment(seq, batch.root, batch.size))
        manifest = ExchangeManifest(region, check_from, check_to, tuple(claims), 0, b"", 0)
        trailer = _Trailer(manifest, None, "", "", b"", 0, 0)
        return cls(
            services,
            trailer,
            check_from=check_from,
            check_to=check_to,
            store=False,
            report_id=None,
        )

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
            tally.chain = self.services.chain.batch_of(self.region, seq)
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
        lines = _body_lines(package, self.trailer.body_end)
        self.check_lines(lines, expected=self.trailer.disclosure_lines)
        self.count_missing()

    def chain_view(self) -> _ChainView:
        """The snapshot workers verify against: this run's anchored batches."""
        gateway = self.services.chain
        deployment = gateway.deployment
        return _ChainView(
            rpc_url=self.services.settings.rpc_url,
            timeout=self.services.settings.chain_timeout_seconds,
            chain_id=deployment.chain_id,
            anchor_address=deployment.anchor,
            head_selector=gateway.anchor.abi.encode_call("headOf", (0, bytes(32)))[:4],
            batches={
                (self.region, seq): tally.chain
                for seq, tally in self.batches.items()
                if tally.anchored and tally.chain is not None
            },
            store=self.store,
        )

    def check_lines(self, lines: Iterable[tuple[int, bytes]], *, expected: int = 0) -> None:
        """Verify and classify body lines ``(line number, bytes)``, in order.

        ``expected`` (lines, if known) of at least ``_PARALLEL_MIN_LINES`` verifies in
        worker processes over every core; classification stays here, in line order, so
        the report is the sequential one.
        """
        self.start_lines(expected)
        try:
            for number, raw in lines:
                self.push_line(number, raw)
            self.end_lines()
        finally:
            self.stop_lines()

    def start_lines(self, expected: int) -> None:
        """Before ``push_line``: start the workers (see ``check_lines``)."""
        workers = _WORKERS if expected >= _PARALLEL_MIN_LINES else 0
        self._runner = _ChunkRunner(self.chain_view(), self.services.chain, workers)
        self._waiting: deque[Future[list[_Checked]]] = deque()
        self._chunk: list[tuple[int, bytes]] = []

    def push_line(self, number: int, raw: bytes) -> None:
        """Verify one more body line (blocks while too many chunks are in flight)."""
        self._chunk.append((number, raw))
        if len(self._chunk) >= _CHUNK_LINES:
            self._submit()

    def _submit(self) -> None:
        runner, waiting = self._runner, self._waiting
        waiting.append(runner.submit(self._chunk))
        self._chunk = []
        while len(waiting) >= runner.limit:
            self._absorb(runner, runner.result(waiting.popleft()))

    def end_lines(self) -> None:
        """After the last ``push_line``: wait for and classify every chunk in flight."""
        if self._chunk:
            self._submit()
        while self._waiting:
            self._absorb(self._runner, self._runner.result(self._waiting.popleft()))

    def stop_lines(self) -> None:
        """Stop the workers (always, also after a failure)."""
        self._runner.close()

    def adopt(self, speculative: _Verification) -> bool:
        """Take the line results of a run that verified this package while it downloaded,
        if that run's assumptions hold for this package's manifest; False if not.

        Classification reads, of the run, only its region and, per batch, whether the run
        has it, whether the manifest claims it and what the chain holds: when all of those
        agree, every line was classified as this run would classify it.
        """
        if self.store or speculative.region != self.region:
            return False
        if self.batches.keys() != speculative.batches.keys():
            return False
        for seq, tally in self.batches.items():
            other = speculative.batches[seq]
            if (tally.claimed is None) != (other.claimed is None) or tally.chain != other.chain:
                return False
        for seq, tally in self.batches.items():
            other = speculative.batches[seq]
            tally.covered, tally.counts = other.covered, other.counts
            tally.anchoring_tx = other.anchoring_tx
        self.tally = speculative.tally
        self.count_missing()
        return True

    def count_missing(self) -> None:
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

    def _absorb(self, runner: _ChunkRunner, results: list[_Checked]) -> None:
        """Classify a verified chunk in line order; store its authentic disclosures."""
        outside = [(checked[0], checked[3]) for checked in results if checked[2] is None]
        if outside:  # batches outside the snapshot: verified here, their heads in one read
            redone = iter(runner.here(outside))
            results = [next(redone) if checked[2] is None else checked for checked in results]
        rows: list[dict[str, Any]] = []
        counts, add_item = self.tally.counts, self.tally.add_item
        for checked in results:
            outcome, item = self._classify(checked)
            counts[outcome] += 1
            if item is not None:
                add_item(item)
            if self.store and outcome in _AUTHENTIC and checked[5] is not None:
                rows.append(
                    {
                        **checked[5],
                        "verdict": outcome,
                        "report_id": self.report_id,
                        "stored_at": time.time(),
                    }
                )
        if rows:
            self._store(rows)

    def _classify(self, checked: _Checked) -> tuple[str, dict[str, Any] | None]:
        """The line's outcome, and its report item unless it is ``verified``."""
        number, (region, seq, index, key, version), outcome, details, pointer, _ = checked
        assert outcome is not None
        tally = self.batches.get(seq) if region == self.region and seq is not None else None
        chain = tally.chain if tally is not None else None
        attributable = (
            tally is not None
            and tally.anchored
            and chain is not None
            and index is not None
            and 0 <= index < chain.size
        )
        # Package-level rules a chain verdict cannot see: the signed region and range, and
        # one disclosure per leaf (a duplicate could otherwise hide an omitted leaf).
        override: tuple[int | None, str, str] | None = None
        if outcome in _AUTHENTIC:
            if region != self.region:
                outcome = "wrong_region"
                override = (
                    None,
                    "package",
                    f"a disclosure of region {region} in a package of region {self.region}",
                )
            elif tally is None or tally.claimed is None:
                outcome = "tampered"
                override = (None, "package", f"batch {seq} is not in the signed manifest")
            elif attributable and index in tally.covered:
                outcome = "tampered"
                override = (None, "package", f"a second disclosure of leaf {index} of batch {seq}")
            elif attributable and (wrong := self._wrong_pointer(pointer, tally)) is not None:
                outcome = "tampered"
                override = (None, "anchor", wrong)
        if attributable:
            assert tally is not None
            tally.covered.add(index)
        if tally is not None:
            tally.counts[outcome] += 1
        if outcome == "verified":
            return outcome, None
        item: dict[str, Any] = {
            "outcome": None,
            "line": number,
            "record_key": key,
            "version": version,
            "seq": seq,
            "index": index,
        }
        item.update(zip(_DETAIL_FIELDS, details, strict=False))
        if override is not None:
            item.update(zip(_DETAIL_FIELDS, override, strict=False))
        item["outcome"] = outcome
        return outcome, item

    def _wrong_pointer(self, pointer: Any, tally: _BatchTally) -> str | None:
        """Why the receipt's transaction or block is not where the chain anchored the batch.

        DESIGN §5 verification proves the leaf against ``batchOf``; the receipt's tx_hash and
        block_number are pointers it does not read. A package must not carry false ones: a
        reader following them would look at some other transaction.
        """
        assert pointer is not None and tally.chain is not None
        block_number, tx_hash = pointer
        if block_number != tally.chain.block_number:
            return (
                f"the receipt names block {block_number}; the chain anchored batch "
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
        if tx_hash != tally.anchoring_tx:
            return (
                f"the receipt names transaction 0x{tx_hash.hex()}; batch {tally.seq} "
                f"was anchored in 0x{tally.anchoring_tx.hex()}"
            )
        return None

    # -- storage of other regions' disclosures

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


class PackageStream:
    """A package as it downloads: stored in ``spool`` and, optionally, verified on the way.

    The manifest is the package's trailer, so nothing can be trusted before the last byte;
    but verifying a disclosure against the chain does not depend on the manifest. With
    ``speculate`` (an integrity check of ``region``'s ``[check_from, check_to]``), body
    lines are verified while the rest arrives, by a run that assumes the manifest claims
    exactly the anchored batches the chain holds in the range. ``verify_package`` checks the
    trailer and signature first, as always, and then adopts those results only if the
    manifest bears the assumption out (``_Verification.adopt``); otherwise, or if anything
    failed on the way, it verifies the stored package from the start. Either way the report
    is the one a verification after the download gives.
    """

    def __init__(
        self,
        services: Any,
        spool: IO[bytes],
        *,
        region: int,
        check_from: int,
        check_to: int,
        speculate: bool,
    ) -> None:
        self.spool = spool
        self._scan = _TrailerScan()
        # The unfinished last line, in pieces: joining it on every write was quadratic in
        # its length (a peer's 1 GiB line without a newline took hours of CPU).
        self._partial: list[bytes] = []
        self._run: _Verification | None = None
        if speculate:
            try:
                run = _Verification.assumed(services, region, check_from, check_to)
                run.start_lines(sum(t.chain.size for t in run.batches.values() if t.chain))
            except Exception as e:  # the verification after the download reports it
                _log.warning("no verification during the download", exc_info=e)
            else:
                self._run = run

    def __enter__(self) -> PackageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def write(self, data: bytes) -> int:
        """Store and scan the next bytes of the package."""
        self.spool.write(data)
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            line = data[start : end + 1]
            if self._partial:
                self._partial.append(line)
                line = b"".join(self._partial)
                self._partial = []
            self._feed(line)
            start = end + 1
        if start < len(data):
            self._partial.append(data[start:])
        return len(data)

    def tell(self) -> int:
        """Bytes received so far."""
        return self.spool.tell()

    def _feed(self, line: bytes) -> None:
        released = self._scan.feed(line)
        if released is not None and self._run is not None:
            try:
                self._run.push_line(*released)
            except Exception as e:
                self._give_up(e)

    def _give_up(self, error: Exception) -> None:
        _log.warning("verification during the download stopped", exc_info=error)
        self._stop()

    def _stop(self) -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.stop_lines()

    def _end(self) -> None:
        if self._partial:
            partial, self._partial = b"".join(self._partial), []
            self._feed(partial)

    def trailer(self) -> _Trailer:
        """The trailer of the whole package (PackageRejected if there is none)."""
        self._end()
        return self._scan.trailer()

    def verified(self) -> _Verification | None:
        """The speculative run, finished, or None if there was none or it failed."""
        self._end()
        run = self._run
        if run is None:
            return None
        try:
            run.end_lines()
        except Exception as e:
            self._give_up(e)
            return None
        self._stop()
        return run


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
    stream: PackageStream | None = None,
) -> dict[str, Any]:
    """Verify a package (a seekable binary file) against the chain; return the report body.

    ``expected_region`` and ``check_from``/``check_to`` (integrity checks) make the range
    checked against the chain the requested one rather than the manifest's, so a peer that
    answers with a shorter range has the rest counted as missing. ``stream`` is the
    ``PackageStream`` that received ``package``: its trailer scan and, when its speculation
    holds, its line results are used instead of reading the package again. Raises
    PackageRejected (step 1), ChainError and VerificationFailed.
    """
    trailer = stream.trailer() if stream is not None else _read_trailer(package)
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
    speculative = stream.verified() if stream is not None else None
    if speculative is not None and run.adopt(speculative):
        _log.info("package verified while it downloaded", extra={"region": run.region})
    else:
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
    except Exception as e:  # a bug or a worker's unexpected error: failed, never "running"
        finish_report(
            services, report_id, "failed", {"reason": f"internal error: {type(e).__name__}"}
        )
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
