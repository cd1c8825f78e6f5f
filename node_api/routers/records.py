"""Records: intake, corrections, revocations, reads and receipts."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import ledger
from ledger.errors import RecordError
from node_api.auth import record_access
from node_api.deps import (
    MAX_VERSION,
    RECORD_KEY_PATTERN,
    USCC_PATTERN,
    AnyRole,
    JsonBytes,
    Operator,
    RecordReader,
    ServicesDep,
)
from node_api.errors import Forbidden, NotFound
from node_api.intake import (
    STATUS_NAMES,
    correct_record,
    prepare_records,
    revoke_record,
    submit_records,
)
from node_api.receipts import build_disclosure, build_receipt, load_version, load_versions

__all__ = ["router", "parse_record_key"]

router = APIRouter(prefix="/v1/records", tags=["records"])

_log = logging.getLogger("node_api.intake")
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")

# The record envelope (DESIGN §3); the payload of each record type, the USCC check character
# and the region are checked by ledger.parse_record, which names the failing field.
_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "one credit record (DESIGN §3)",
    "required": [
        "schema",
        "region",
        "uscc",
        "record_type",
        "record_id",
        "issued_by",
        "issued_at",
        "data",
    ],
    "additionalProperties": False,
    "properties": {
        "schema": {"type": "string", "enum": [ledger.RECORD_SCHEMA]},
        "region": {"type": "integer", "minimum": 100000, "maximum": 999999},
        "uscc": {"type": "string", "pattern": USCC_PATTERN},
        "record_type": {"type": "string", "enum": list(ledger.RECORD_TYPES)},
        "record_id": {"type": "string", "minLength": 1},
        "issued_by": {"type": "string", "minLength": 1},
        "issued_at": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "data": {"type": "object", "description": "the payload of record_type"},
    },
}
_RECORDS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _RECORD_SCHEMA,
                        {
                            "type": "array",
                            "items": _RECORD_SCHEMA,
                            "minItems": 1,
                            "maxItems": 10000,
                            "description": "up to 10,000 records, stored all or nothing",
                        },
                    ]
                }
            }
        },
    }
}


RecordKeyPath = Annotated[
    str, Path(pattern=RECORD_KEY_PATTERN, description="64 lower-case hex digits")
]


class RevokeRequest(BaseModel):
    """Why a record is revoked (credit repair, delisting, withdrawal...)."""

    reason: str = Field(min_length=1, max_length=2000)


def parse_record_key(record_key: str) -> bytes:
    """A record key from the path: 64 lower-case hex digits."""
    if not _KEY_RE.match(record_key):
        raise RecordError("record_key", "must be 64 lower-case hex digits")
    return bytes.fromhex(record_key)


@router.post("", status_code=202, openapi_extra=_RECORDS_BODY)
def submit(services: ServicesDep, caller: Operator, body: JsonBytes) -> JSONResponse:
    """Submit one record or a list of up to 10,000 (all or nothing); 202 once committed."""
    settings = services.settings
    submission = services.intake_pool.prepare(
        body, settings.region, services.node_secret, settings.max_records_per_request
    )
    results = submit_records(
        services.db, services.node_secret, submission.records, submission.material
    )
    created = sum(1 for r in results if r.created)
    services.metrics.records_accepted.labels("created").inc(created)
    services.metrics.records_accepted.labels("unchanged").inc(len(results) - created)
    if created and services.worker is not None:
        services.worker.trigger()
    _log.info(
        "records accepted",
        extra={"caller": caller.name, "records": len(results), "new_versions": created},
    )
    # A Response skips FastAPI's jsonable_encoder walking the 10,000 results of a bulk
    # submission, which are plain JSON already (about 3% of the node's CPU per imported
    # record, bench/findings.md).
    return JSONResponse(
        {
            "accepted": len(results),
            "created": created,
            "unchanged": len(results) - created,
            "records": [r.to_json() for r in results],
        },
        status_code=202,
    )


@router.put(
    "/{record_key}",
    status_code=202,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _RECORD_SCHEMA}}}},
)
def correct(
    record_key: RecordKeyPath,
    services: ServicesDep,
    caller: Operator,
    record: Annotated[dict[str, Any], Body(description="the corrected record (same identity)")],
) -> dict[str, Any]:
    """Correct a record: a new active version with the same region, uscc, type and record_id."""
    key = parse_record_key(record_key)
    (prepared,) = prepare_records([record], services.settings.region)
    result = correct_record(services.db, services.node_secret, key, prepared)
    if result.created:
        services.metrics.records_accepted.labels("corrected").inc()
        if services.worker is not None:
            services.worker.trigger()
    _log.info(
        "record corrected",
        extra={
            "caller": caller.name,
            "record_key": record_key,
            "version": result.version,
            "new_version": result.created,
        },
    )
    return {k: v for k, v in result.to_json().items() if k != "index"}


@router.post("/{record_key}/revoke", status_code=202)
def revoke(
    record_key: RecordKeyPath, services: ServicesDep, caller: Operator, request: RevokeRequest
) -> dict[str, Any]:
    """Revoke a record (e.g. credit repair): a revoked version of the same record, with a reason."""
    key = parse_record_key(record_key)
    result = revoke_record(services.db, services.node_secret, key, request.reason)
    if result.created:
        services.metrics.records_accepted.labels("revoked").inc()
        if services.worker is not None:
            services.worker.trigger()
    _log.info(
        "record revoked",
        extra={
            "caller": caller.name,
            "record_key": record_key,
            "version": result.version,
            "new_version": result.created,
        },
    )
    return {k: v for k, v in result.to_json().items() if k != "index"} | {"reason": request.reason}


@router.get("/{record_key}")
def read(
    record_key: RecordKeyPath, services: ServicesDep, caller: RecordReader, request: Request
) -> dict[str, Any]:
    """A record with all its versions (operator, auditor, member; logged with purpose)."""
    key = parse_record_key(record_key)
    with services.db.read() as conn:
        versions = load_versions(conn, record_key=key)
    if not versions:
        raise NotFound(f"no record {record_key} at this node", record_key=record_key)
    record_access(
        services.db, caller, request, "read_record", record_key=key, uscc=versions[0].uscc
    )
    latest = versions[-1]
    return {
        "record_key": record_key,
        "region": latest.region,
        "uscc": latest.uscc,
        "record_type": latest.record_type,
        "record_id": latest.record_id,
        "latest_version": latest.version,
        "status": STATUS_NAMES[latest.status],
        "versions": [v.detail() for v in versions],
    }


@router.get("/{record_key}/receipt")
def receipt(
    record_key: RecordKeyPath,
    services: ServicesDep,
    caller: AnyRole,
    request: Request,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="default: the latest version")
    ] = None,
    disclose: Annotated[bool, Query(description="add record and salt (not for verifiers)")] = False,
) -> dict[str, Any]:
    """The receipt of an anchored version; with disclose=true a disclosure (record and salt)."""
    key = parse_record_key(record_key)
    if disclose and caller.role == "verifier":
        raise Forbidden("verifiers get receipts, never record payloads (usable, not visible)")
    with services.db.read() as conn:
        row = load_version(conn, key, version)
        if not disclose:
            return build_receipt(conn, services, row).to_json()
    record_access(
        services.db, caller, request, "disclose", record_key=key, uscc=row.uscc, version=row.version
    )
    with services.db.read() as conn:
        return build_disclosure(conn, services, row).to_json()
