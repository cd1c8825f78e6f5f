"""Intake of credit records: validation, idempotent submission, corrections and revocations.

Every version's salt, commitment and leaf hash are fixed at intake: a leaf depends only on
the record and its predecessor, never on the batch, so sealing has nothing left to compute
but the tree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, select, text, update
from sqlalchemy.exc import IntegrityError

import ledger
from ledger.commitment import COMMIT_DOMAIN, SaltDeriver
from ledger.errors import RecordError
from node_api.db import Database
from node_api.db.bulk import insert_many
from node_api.db.tables import batches, record_versions, records
from node_api.errors import BadRequest, Conflict, IntakeRecordError, NotFound, PayloadTooLarge

__all__ = [
    "STATUS_CODES",
    "STATUS_NAMES",
    "PreparedRecord",
    "Submission",
    "SubmissionResult",
    "parse_json",
    "prepare_records",
    "prepare_submission",
    "submit_records",
    "correct_record",
    "revoke_record",
    "version_state",
]

STATUS_CODES = {"active": 1, "revoked": 2, "expired": 3}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}

_ZERO_LEAF = bytes(32)
_MAX_REPORTED_ERRORS = 100
_IN_CHUNK = 500  # bound on bound parameters per IN (...) query
_RETRIES = 3  # concurrent first submissions of one key on PostgreSQL: retry, then it's a no-op
_RECORD_COLUMNS = (
    "record_key",
    "region",
    "uscc",
    "record_type",
    "record_id",
    "latest_version",
    "created_at",
    "updated_at",
    "rec_no",
)
_VERSION_COLUMNS = (
    "record_key",
    "version",
    "status",
    "record_json",
    "salt",
    "commitment",
    "prev_leaf",
    "leaf_hash",
    "submitted_at",
    "rec_no",
)


# Named tuples, not dataclasses: a bulk submission prepared in an intake process comes back
# pickled, and 10,000 tuples unpickle in a few milliseconds (node_api.intake_pool).
class PreparedRecord(NamedTuple):
    """A validated record with its identity and canonical bytes."""

    index: int
    record_key: bytes
    region: int
    uscc: str
    record_type: str
    record_id: str
    canonical: bytes


class SubmissionResult(NamedTuple):
    """What happened to one submitted record."""

    index: int
    record_key: bytes
    version: int
    status: int
    state: str
    created: bool

    def to_json(self) -> dict[str, Any]:
        """The JSON form returned by the API."""
        return {
            "index": self.index,
            "record_key": self.record_key.hex(),
            "version": self.version,
            "status": STATUS_NAMES[self.status],
            "state": self.state,
            "created": self.created,
        }


class Material(NamedTuple):
    """A version's salt, commitment and leaf hash."""

    salt: bytes
    commitment: bytes
    leaf_hash: bytes


class Submission(NamedTuple):
    """The validated records of one request, with the material each gets as version 1."""

    records: list[PreparedRecord]
    material: list[Material]


@functools.lru_cache(maxsize=4)
def _salt_deriver(secret: bytes) -> SaltDeriver:
    # Measured (bench/): hmac.digest was 85% of the material of a version; SaltDeriver
    # keeps the HMAC key schedule and derives the same salt about three times faster.
    return SaltDeriver(secret)


def _material(
    secret: bytes,
    record_key: bytes,
    version: int,
    status: int,
    prev_leaf: bytes,
    canonical: bytes,
) -> Material:
    salt = _salt_deriver(secret)(record_key, version)
    # ledger.commitment() would canonicalise the record again; intake already holds the
    # canonical bytes, and canonicalising is most of the cost of 10,000-record submissions.
    commitment = hashlib.sha256(COMMIT_DOMAIN + salt + canonical).digest()
    leaf = ledger.leaf_hash(record_key, version, status, prev_leaf, commitment)
    return Material(salt, commitment, leaf)


def _prepare_one(index: int, obj: Any, region: int) -> PreparedRecord:
    parsed = ledger.parse_record(obj)
    if parsed.region != region:
        raise RecordError("region", f"this node accepts records of region {region} only")
    return PreparedRecord(
        index=index,
        # The parsed record is validated already; record_key() would check it all again.
        record_key=ledger.record_key_of(parsed),
        region=parsed.region,
        uscc=parsed.uscc,
        record_type=parsed.record_type.type_name,
        record_id=parsed.record_id,
        canonical=parsed.canonical_bytes(),
    )


def prepare_records(objs: Sequence[Any], region: int) -> list[PreparedRecord]:
    """Validate every record; IntakeRecordError names the first invalid one and lists all."""
    prepared: list[PreparedRecord] = []
    errors: list[dict[str, Any]] = []
    for index, obj in enumerate(objs):
        try:
            prepared.append(_prepare_one(index, obj, region))
        except RecordError as e:
            if len(errors) < _MAX_REPORTED_ERRORS:
                errors.append({"index": index, "field": e.field, "reason": e.reason})
            elif len(errors) == _MAX_REPORTED_ERRORS:
                errors.append({"index": None, "field": "", "reason": "more errors omitted"})
    if errors:
        first = errors[0]
        raise IntakeRecordError(first["index"], first["field"], first["reason"], errors)
    return prepared


def parse_json(body: bytes) -> Any:
    """A request body as JSON: strict UTF-8 (RFC 8259 §8.1), no BOM; BadRequest otherwise."""
    try:
        # json.loads(bytes) would also take UTF-16/32 and a leading BOM.
        return json.loads(body.decode("utf-8"))
    except ValueError as e:  # not UTF-8, not JSON, or an integer of over 4,300 digits
        raise BadRequest(f"body is not JSON: {e}") from None
    except RecursionError:
        # Bounded by the recursion limit create_app (and an intake process) sets, see
        # node_api.main.
        raise BadRequest("body is not acceptable JSON: nested too deeply") from None


def prepare_submission(body: bytes, region: int, secret: bytes, limit: int) -> Submission:
    """The body of ``POST /v1/records`` (one record or a list of at most ``limit``),
    validated, with each record's material as version 1.

    Depends on nothing but its arguments, so that an intake process can run it.
    """
    parsed = parse_json(body)
    objs = [parsed] if isinstance(parsed, dict) else parsed
    if not isinstance(objs, list):
        raise BadRequest("body must be a record object or an array of records")
    if not objs:
        raise BadRequest("empty list: nothing to submit")
    if len(objs) > limit:
        raise PayloadTooLarge(f"{len(objs)} records in one request; the limit is {limit}")
    prepared = prepare_records(objs, region)
    return Submission(prepared, _first_material(secret, prepared))


def _first_material(secret: bytes, prepared: Sequence[PreparedRecord]) -> list[Material]:
    # Version 1 material does not depend on the database: computed before taking the lock.
    return [_material(secret, p.record_key, 1, 1, _ZERO_LEAF, p.canonical) for p in prepared]


def version_state(batch_seq: int | None, batch_state: str | None) -> str:
    """Pipeline state of a version: queued, sealed, anchored (or conflict)."""
    if batch_seq is None:
        return "queued"
    return batch_state or "sealed"


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _latest_versions(conn: Connection, keys: Sequence[bytes]) -> dict[bytes, Any]:
    """Latest version row (with its batch state) of each existing record among ``keys``."""
    latest: dict[bytes, Any] = {}
    rv = record_versions
    for chunk in _chunks(keys):
        rows = conn.execute(
            select(
                rv.c.record_key,
                rv.c.rec_no,
                rv.c.version,
                rv.c.status,
                rv.c.record_json,
                rv.c.leaf_hash,
                rv.c.batch_seq,
                batches.c.state,
            )
            .select_from(
                records.join(
                    rv,
                    and_(
                        rv.c.rec_no == records.c.rec_no,
                        rv.c.version == records.c.latest_version,
                    ),
                ).outerjoin(batches, batches.c.seq == rv.c.batch_seq)
            )
            .where(records.c.record_key.in_(chunk))
        ).all()
        for row in rows:
            latest[bytes(row.record_key)] = row
    return latest


def _record_numbers(conn: Connection, db: Database, count: int) -> list[int]:
    """``count`` unused record numbers (records.rec_no), in increasing order."""
    if count == 0:
        return []
    if db.is_sqlite:
        # The write transaction holds SQLite's write lock: nobody else numbers records now.
        last = conn.execute(select(func.max(records.c.rec_no))).scalar() or 0
        return list(range(last + 1, last + 1 + count))
    # PostgreSQL: concurrent submissions draw from one sequence (schema v4).
    return list(
        conn.execute(
            text("SELECT nextval('records_rec_no_seq') FROM generate_series(1, :n)"), {"n": count}
        ).scalars()
    )


def submit_records(
    db: Database,
    secret: bytes,
    prepared: Sequence[PreparedRecord],
    material: Sequence[Material] | None = None,
) -> list[SubmissionResult]:
    """Store new records as version 1 in one transaction; identical resubmissions are no-ops.

    ``material`` is each record's as version 1 (from :func:`prepare_submission`), computed
    here if not given. All or nothing: changed content for an existing record key raises
    Conflict (use PUT) and nothing of the request is stored.
    """
    if material is None:
        material = _first_material(secret, prepared)
    for attempt in range(_RETRIES):
        try:
            return _submit_once(db, prepared, material)
        except IntegrityError:
            # Another transaction created one of these keys since we looked (PostgreSQL);
            # the retry sees it and answers no-op or conflict.
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _submit_once(
    db: Database, prepared: Sequence[PreparedRecord], material: Sequence[Material]
) -> list[SubmissionResult]:
    now = time.time()
    results: list[SubmissionResult] = []
    fresh: list[tuple[PreparedRecord, Material]] = []  # new records, in request order
    with db.write() as conn:
        latest = _latest_versions(conn, list({p.record_key for p in prepared}))
        in_request: dict[bytes, PreparedRecord] = {}
        for p, m in zip(prepared, material, strict=True):
            earlier = in_request.get(p.record_key)
            if earlier is not None:
                if earlier.canonical != p.canonical:
                    raise Conflict(
                        f"record {p.index} has the record key of record {earlier.index} with "
                        "different content; submit a correction with PUT",
                        index=p.index,
                        record_key=p.record_key.hex(),
                    )
                results.append(SubmissionResult(p.index, p.record_key, 1, 1, "queued", False))
                continue
            in_request[p.record_key] = p
            row = latest.get(p.record_key)
            if row is not None:
                if row.record_json.encode("utf-8") != p.canonical:
                    raise Conflict(
                        f"record {p.index} exists with different content at version "
                        f"{row.version}; use PUT /v1/records/{p.record_key.hex()} to correct it",
                        index=p.index,
                        record_key=p.record_key.hex(),
                        version=row.version,
                    )
                results.append(
                    SubmissionResult(
                        p.index,
                        p.record_key,
                        row.version,
                        row.status,
                        version_state(row.batch_seq, row.state),
                        False,
                    )
                )
                continue
            fresh.append((p, m))
            results.append(SubmissionResult(p.index, p.record_key, 1, 1, "queued", True))
        numbers = _record_numbers(conn, db, len(fresh))
        new_records: list[tuple[Any, ...]] = []
        new_versions: list[tuple[Any, ...]] = []
        for (p, m), number in zip(fresh, numbers, strict=True):
            new_records.append(
                (p.record_key, p.region, p.uscc, p.record_type, p.record_id, 1, now, now, number)
            )
            new_versions.append(
                (
                    p.record_key,
                    1,
                    1,
                    p.canonical.decode("utf-8"),
                    m.salt,
                    m.commitment,
                    _ZERO_LEAF,
                    m.leaf_hash,
                    now,
                    number,
                )
            )
        insert_many(conn, records, _RECORD_COLUMNS, new_records)
        insert_many(conn, record_versions, _VERSION_COLUMNS, new_versions)
    return results


def _lock_latest(conn: Connection, db: Database, record_key: bytes) -> Any:
    query = select(records.c.latest_version, records.c.region).where(
        records.c.record_key == record_key
    )
    if not db.is_sqlite:
        # Serialise concurrent corrections of one record (SQLite's write lock already does).
        query = query.with_for_update()
    head = conn.execute(query).first()
    if head is None:
        raise NotFound(f"no record {record_key.hex()} at this node", record_key=record_key.hex())
    rows = _latest_versions(conn, [record_key])
    return rows[record_key]


def _append_version(
    conn: Connection,
    secret: bytes,
    record_key: bytes,
    previous: Any,
    status: int,
    canonical: str,
    reason: str | None,
) -> int:
    version = int(previous.version) + 1
    m = _material(
        secret, record_key, version, status, bytes(previous.leaf_hash), canonical.encode()
    )
    now = time.time()
    conn.execute(
        record_versions.insert().values(
            record_key=record_key,
            rec_no=previous.rec_no,
            version=version,
            status=status,
            record_json=canonical,
            salt=m.salt,
            commitment=m.commitment,
            prev_leaf=bytes(previous.leaf_hash),
            leaf_hash=m.leaf_hash,
            reason=reason,
            submitted_at=now,
        )
    )
    conn.execute(
        update(records)
        .where(records.c.record_key == record_key)
        .values(latest_version=version, updated_at=now)
    )
    return version


def correct_record(
    db: Database, secret: bytes, record_key: bytes, prepared: PreparedRecord
) -> SubmissionResult:
    """Store a correction as a new active version; identical to the active version → no-op."""
    if prepared.record_key != record_key:
        raise RecordError(
            "record_key",
            f"the body's region, uscc, record_type and record_id give record key "
            f"{prepared.record_key.hex()}, not {record_key.hex()}",
        )
    with db.write() as conn:
        previous = _lock_latest(conn, db, record_key)
        if previous.status == 1 and previous.record_json.encode("utf-8") == prepared.canonical:
            return SubmissionResult(
                0,
                record_key,
                previous.version,
                previous.status,
                version_state(previous.batch_seq, previous.state),
                False,
            )
        version = _append_version(
            conn,
            secret,
            record_key,
            previous,
            1,
            prepared.canonical.decode("utf-8"),
            None,
        )
    return SubmissionResult(0, record_key, version, 1, "queued", True)


def revoke_record(db: Database, secret: bytes, record_key: bytes, reason: str) -> SubmissionResult:
    """Append a revoked version carrying the same record as the version it revokes.

    The payload is unchanged (what was revoked stays provable); the reason is stored with
    the version and shown in history, but is not part of the commitment. Revoking a revoked
    record is a no-op returning the existing revocation.
    """
    with db.write() as conn:
        previous = _lock_latest(conn, db, record_key)
        if previous.status == STATUS_CODES["revoked"]:
            return SubmissionResult(
                0,
                record_key,
                previous.version,
                previous.status,
                version_state(previous.batch_seq, previous.state),
                False,
            )
        version = _append_version(
            conn, secret, record_key, previous, 2, previous.record_json, reason
        )
    return SubmissionResult(0, record_key, version, 2, "queued", True)
