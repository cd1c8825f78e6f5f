"""Bulk import of credit records into a node: streamed, chunked, resumable, with a rejects file.

Input, JSON Lines or CSV, read as a stream (any size, constant memory):

* JSON Lines: one JSON object per line. A record object (DESIGN §3) is a new record; an
  envelope ``{"op": "correct", "version": 2, "record": {…}}`` is a correction (a new active
  version of an existing record); ``{"op": "revoke", "version": 3, "record": {"region",
  "uscc", "record_type", "record_id"}, "reason": "…"}`` revokes one (credit repair,
  delisting). ``version``, optional, is the version the operation creates; ``op`` ``create``
  with ``record`` is the same as the bare record. Blank lines are skipped.
* CSV with a header: ``region, uscc, record_type, record_id, issued_by, issued_at, data``
  (``data`` is the payload as a JSON object) and optionally ``op``, ``version``, ``reason``,
  ``schema``. Revocations need only the four identity columns and ``reason``.

Corrections, revocations, CSV rows and records of another region than the node's are
validated here with ``ledger.parse_record``; a JSON Lines record of the node's region is
sent as it is, byte for byte, and validated by the node, whose answer names the row, field
and reason just the same (parsing it here too cost as much CPU as the node's own intake,
bench/findings.md). New records go to ``POST /v1/records`` in chunks of up to 10,000 (the
node stores a chunk all or nothing), corrections to ``PUT /v1/records/{key}``, revocations
to ``POST /v1/records/{key}/revoke``, in file order after the chunk's new records. Two
chunks of only new records are in flight at once when no record key is in both (the node
validates one while it stores the other); their answers are taken in file order.

Rejected rows go to a CSV file ``row,field,reason``; ``row`` is the line number in the file
where the row starts (the CSV header is line 1).

Resuming. A checkpoint file records the byte offset and SHA-256 of the input up to the last
fully acknowledged chunk, plus the progress inside the chunk being sent (new records
acknowledged, corrections and revocations applied so far). A re-run checks that the input
still starts with the same bytes, skips what the checkpoint covers and carries on; an input
that grew since (appended rows) continues where it stopped. Whatever the checkpoint
misses is safe to send again: an identical record is a no-op at the node. A correction or
revocation that carries its ``version`` is skipped when the node already holds that version
(known from the node's answers in this run, else read from the node), so even a re-run
without the checkpoint (``--restart``) adds nothing twice. Without ``version`` a correction
identical to the current version and a revocation of a revoked record are no-ops, which
covers the one operation a killed run may have left unconfirmed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import httpx

import ledger
from ledger.errors import RecordError
from node_api.cli.common import CliError, ExitCode, response_error

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_CHUNK",
    "CSV_REQUIRED",
    "ImportOptions",
    "ImportSummary",
    "run_import",
    "detect_format",
]

CHECKPOINT_FORMAT: Final = "credit-ledger/import-checkpoint/v1"
MAX_CHUNK: Final = 10_000  # the node's limit per POST /v1/records
CSV_REQUIRED: Final = ("region", "uscc", "record_type", "record_id")
CSV_RECORD_COLUMNS: Final = ("issued_by", "issued_at", "data")
CSV_OPTIONAL: Final = ("op", "version", "reason", "schema")
_OPS: Final = ("create", "correct", "revoke")
_ENVELOPE: Final = frozenset({"op", "version", "record", "reason"})
_KNOWN_VERSIONS: Final = 200_000  # record keys whose latest version the run remembers
_HASH_BLOCK: Final = 1 << 20
_RETRY_STATUS: Final = frozenset({429, 502, 503, 504})
_COUNT_KEYS: Final = ("rows", "created", "unchanged", "corrected", "revoked", "rejected")
_JSON: Final = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class ImportOptions:
    """What to import where, and how."""

    path: Path
    node_url: str
    api_key: str
    fmt: str = "auto"  # auto | jsonl | csv
    chunk_size: int = MAX_CHUNK
    rejects_path: Path | None = None  # default <file>.rejects.csv
    checkpoint_path: Path | None = None  # default <file>.checkpoint.json
    restart: bool = False
    max_attempts: int = 6  # per request, on connection failures and 429/502/503/504
    timeout: float = 300.0

    @property
    def rejects(self) -> Path:
        """The rejects file."""
        return self.rejects_path or self.path.with_name(self.path.name + ".rejects.csv")

    @property
    def checkpoint(self) -> Path:
        """The checkpoint file."""
        return self.checkpoint_path or self.path.with_name(self.path.name + ".checkpoint.json")


@dataclass
class ImportSummary:
    """Outcome of an import run; counts are cumulative over resumed runs."""

    file: str
    node: str
    region: int
    format: str
    counts: dict[str, int]
    resumed_at_line: int | None
    rows_this_run: int
    rejects_file: str
    checkpoint_file: str
    seconds: float

    @property
    def accepted(self) -> int:
        """Rows the node holds now: new, already present, corrected or revoked."""
        c = self.counts
        return c["created"] + c["unchanged"] + c["corrected"] + c["revoked"]

    def to_json(self) -> dict[str, Any]:
        """JSON form (for ``--json``)."""
        return {**asdict(self), "accepted": self.accepted}


@dataclass
class _Row:
    """One input row: a validated operation, or the reason it was rejected."""

    line: int
    end: int  # byte offset just past the row
    op: str = "create"
    record: dict[str, Any] | None = None
    key: str = ""
    reason: str | None = None
    version: int | None = None
    reject: tuple[str, str] | None = None  # (field, reason)
    raw: bytes | None = None  # the JSON line of a record sent unparsed (validated by the node)


@dataclass
class _Pending:
    """Progress inside the chunk being sent (saved in the checkpoint after every step)."""

    chunk_end: int
    chunk_line: int
    chunk_sha256: str
    creates_done: bool = False
    ops_done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def reject(self, line: int, field_name: str, reason: str) -> None:
        self.rejects.append((line, field_name, reason))
        self.count("rejected")


def detect_format(path: Path, fmt: str) -> str:
    """``jsonl`` or ``csv``: as given, else from the file name, else from the first byte."""
    if fmt in ("jsonl", "csv"):
        return fmt
    if fmt != "auto":
        raise CliError(f"unknown format {fmt!r}: use jsonl, csv or auto", ExitCode.USAGE)
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        return "csv"
    if {".jsonl", ".ndjson", ".json"} & set(suffixes):
        return "jsonl"
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


# --------------------------------------------------------------------------- reading


class _Reader:
    """Rows of the input from a byte offset, hashing every byte it consumes."""

    def __init__(self, f: IO[bytes], fmt: str, offset: int, line: int, hasher: Any) -> None:
        self.f = f
        self.fmt = fmt
        self.offset = offset
        self.line = line  # lines consumed before ``offset``
        self.hasher = hasher
        self.header: list[str] | None = None

    def _lines(self) -> Iterator[bytes]:
        for raw in self.f:
            self.offset += len(raw)
            self.hasher.update(raw)
            self.line += 1
            yield raw

    def rows(self) -> Iterator[tuple[int, int, Any]]:
        """(line, end offset, parsed object or (field, reason) rejection) per row."""
        if self.fmt == "jsonl":
            for raw in self._lines():
                if not raw.strip():
                    continue
                try:
                    yield self.line, self.offset, _JsonLine(json.loads(raw), raw)
                except (ValueError, UnicodeDecodeError) as e:
                    yield self.line, self.offset, ("", f"not valid JSON: {e}")
            return
        yield from self._csv_rows()

    def _csv_rows(self) -> Iterator[tuple[int, int, Any]]:
        # Invalid UTF-8 becomes lone surrogates, which the record parser rejects by field.
        text = (raw.decode("utf-8", "surrogateescape") for raw in self._lines())
        reader = csv.reader(text, strict=True)
        while True:
            start = self.line + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield start, self.offset, ("", f"not valid CSV: {e}")
                continue
            if self.header is None:
                self.header = _check_header(fields)
                continue
            if not fields or fields == [""]:
                continue
            yield start, self.offset, _csv_item(self.header, fields)


def _check_header(fields: list[str]) -> list[str]:
    header = [f.strip().lstrip("\ufeff") for f in fields]
    known = set(CSV_REQUIRED) | set(CSV_RECORD_COLUMNS) | set(CSV_OPTIONAL)
    unknown = [h for h in header if h not in known]
    if unknown:
        raise CliError(f"CSV header: unknown column {unknown[0]!r} (known: {sorted(known)})")
    missing = [h for h in (*CSV_REQUIRED, *CSV_RECORD_COLUMNS) if h not in header]
    if missing:
        raise CliError(f"CSV header: missing column {missing[0]!r}")
    if len(set(header)) != len(header):
        raise CliError("CSV header: a column appears twice")
    return header


def _csv_item(header: list[str], fields: list[str]) -> Any:
    if len(fields) != len(header):
        return ("", f"expected {len(header)} columns, got {len(fields)}")
    values = dict(zip(header, fields, strict=True))
    op = values.get("op") or "create"
    region_text = values["region"].strip()
    region: Any = int(region_text) if region_text.isdigit() else region_text
    if not isinstance(region, int):
        return ("region", f"{region_text!r} is not a division code")
    identity = {
        "region": region,
        "uscc": values["uscc"],
        "record_type": values["record_type"],
        "record_id": values["record_id"],
    }
    item: dict[str, Any] = {"op": op}
    version_text = (values.get("version") or "").strip()
    if version_text:
        if not version_text.isdigit():
            return ("version", f"{version_text!r} is not a version number")
        item["version"] = int(version_text)
    if op == "revoke":
        return {**item, "record": identity, "reason": values.get("reason", "")}
    try:
        data = json.loads(values["data"])
    except ValueError as e:
        return ("data", f"not a JSON object: {e}")
    record = {
        "schema": values.get("schema") or ledger.RECORD_SCHEMA,
        **identity,
        "issued_by": values["issued_by"],
        "issued_at": values["issued_at"],
        "data": data,
    }
    item["record"] = record
    if values.get("reason"):
        item["reason"] = values["reason"]
    return item


@dataclass(frozen=True, slots=True)
class _JsonLine:
    """A parsed JSON Lines row and its bytes."""

    obj: Any
    raw: bytes


def _classify(line: int, end: int, item: Any, region: int) -> _Row:
    """Validate one parsed row against the record rules and the node's region.

    A JSON Lines record of the node's region is left to the node to validate and is sent
    as the bytes read (UTF-8 JSON beginning with ``{``: what the node's parser takes).
    """
    if isinstance(item, _JsonLine):
        obj, raw = item.obj, item.raw.strip()
        if (
            type(obj) is dict
            and "op" not in obj
            and obj.get("region") == region
            and type(obj.get("region")) is int
            and raw[:1] == b"{"
        ):
            return _Row(line, end, record=obj, raw=raw)
        item = obj
    row = _Row(line, end)
    if isinstance(item, tuple):
        row.reject = item
        return row
    if type(item) is not dict:
        row.reject = ("", "a row must be a JSON object")
        return row
    record: Any = item
    if "op" in item:
        unknown = sorted(set(item) - _ENVELOPE)
        if unknown:
            row.reject = (unknown[0], "unknown field of an import row (op, record, reason)")
            return row
        row.op = item["op"]
        if row.op not in _OPS:
            row.reject = ("op", f"unknown op {row.op!r}; expected one of {list(_OPS)}")
            return row
        record = item.get("record")
        if type(record) is not dict:
            row.reject = ("record", "must be a JSON object")
            return row
        row.reason = item.get("reason")
        if row.op != "revoke" and row.reason is not None:
            row.reject = ("reason", "only a revocation takes a reason")
            return row
        version = item.get("version")
        if version is not None:
            lowest = 1 if row.op == "create" else 2
            if type(version) is not int or not lowest <= version < 2**32:
                row.reject = ("version", f"must be an integer of at least {lowest}")
                return row
            if row.op != "create":
                row.version = version
    try:
        if row.op == "revoke":
            reason = row.reason
            if type(reason) is not str or not reason.strip() or len(reason) > 2000:
                row.reject = ("reason", "a revocation needs a reason of 1 to 2000 characters")
                return row
            key = ledger.record_key(
                record.get("region"),
                record.get("uscc"),
                record.get("record_type"),
                record.get("record_id"),
            )
            record_region = record.get("region")
        else:
            parsed = ledger.parse_record(record)
            key = ledger.record_key_of(parsed)
            record_region = parsed.region
    except RecordError as e:
        row.reject = (e.field, e.reason)
        return row
    if record_region != region:
        row.reject = ("region", f"record of region {record_region}; this node is region {region}")
        return row
    row.record = record
    row.key = key.hex()
    return row


# --------------------------------------------------------------------------- the run


class _Import:
    """One run of an import (see the module docstring)."""

    def __init__(
        self,
        options: ImportOptions,
        http: httpx.Client,
        progress: Callable[[int, dict[str, int]], None] | None,
        log: Callable[[str], None],
    ) -> None:
        self.o = options
        self.http = http
        self.progress = progress or (lambda offset, counts: None)
        self.log = log
        self.counts = dict.fromkeys(_COUNT_KEYS, 0)
        self.rows_this_run = 0
        self.region = 0
        self.fmt = "jsonl"
        self.offset = 0
        self.line = 0
        self.sha256 = hashlib.sha256().hexdigest()
        self.rejects_bytes = 0
        self.chunk_size = max(1, min(options.chunk_size, MAX_CHUNK))
        self._rejects: IO[bytes]
        # Latest version per record key, from the node's answers in this run (bounded LRU).
        self.known: OrderedDict[str, int] = OrderedDict()

    def _know(self, key: str, version: int) -> None:
        self.known[key] = version
        self.known.move_to_end(key)
        if len(self.known) > _KNOWN_VERSIONS:
            self.known.popitem(last=False)

    # ----------------------------------------------------------------- HTTP

    def _send(
        self, method: str, path: str, what: str, *, attempts: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        delay = 0.5
        attempts = attempts or self.o.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as e:
                problem = f"cannot reach the node at {self.o.node_url}: {e}"
            else:
                if response.status_code not in _RETRY_STATUS:
                    return response
                problem = f"HTTP {response.status_code} {response.text[:200]}"
            if attempt == attempts:
                saved = " (progress is saved; run the same import again to resume)"
                raise CliError(
                    f"{what}: {problem}{saved if self.offset or self.line else ''}",
                    ExitCode.UNAVAILABLE,
                )
            self.log(f"{what}: {problem}; retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def _fatal(self, response: httpx.Response, what: str) -> CliError:
        error = response_error(response, what)
        if response.status_code in (401, 403):
            error.message += " (is --api-key an operator key of this node?)"
        return error

    def node_region(self) -> int:
        """The node's region, from its health endpoint."""
        # Not retried for long: a wrong --node should fail at once, not after a minute.
        response = self._send("GET", "/v1/health", "health check", attempts=1)
        try:
            return int(response.json()["region"])
        except (ValueError, KeyError, TypeError) as e:
            raise CliError(
                f"{self.o.node_url} does not look like a credit-ledger node "
                f"(GET /v1/health: HTTP {response.status_code})"
            ) from e

    # ----------------------------------------------------------------- creates

    def _post(
        self, rows: list[_Row], pending: _Pending, response: httpx.Response | None = None
    ) -> None:
        """Submit new records; ``response`` is the node's answer to them if sent already."""
        if not rows:
            return
        if response is None:
            response = self._send(
                "POST",
                "/v1/records",
                f"submitting {len(rows)} records (lines {rows[0].line}-{rows[-1].line})",
                content=_records_body(rows),
                headers=_JSON,
            )
        status = response.status_code
        if status == 202:
            results = response.json()["records"]
            for result in results:
                pending.count("created" if result["created"] else "unchanged")
                self._know(result["record_key"], int(result["version"]))
            return
        answer = _json_or_none(response)
        if status == 409 and isinstance(answer, dict) and isinstance(answer.get("index"), int):
            # The node checks in order and stops at the first conflict: what comes before is
            # fine. Bisecting the rest keeps many conflicts from resending the chunk each.
            i = answer["index"]
            self._post(rows[:i], pending)
            self._resolve_conflict(rows[i], pending)
            rest = rows[i + 1 :]
            middle = len(rest) // 2 if len(rest) > 64 else 0
            self._post(rest[:middle], pending)
            self._post(rest[middle:], pending)
            return
        if status == 422 and isinstance(answer, dict) and answer.get("error") == "invalid_record":
            errors = answer.get("errors") or [answer]
            bad = {e["index"]: e for e in errors if isinstance(e.get("index"), int)}
            if not bad:
                raise self._fatal(response, "submitting records")
            for index, error in sorted(bad.items()):
                pending.reject(rows[index].line, str(error.get("field")), str(error.get("reason")))
            self._post([r for j, r in enumerate(rows) if j not in bad], pending)
            return
        if status == 413 and len(rows) > 1:
            self.chunk_size = max(1, len(rows) // 2)
            self.log(f"the node took at most {self.chunk_size} records per request")
            self._post(rows[: len(rows) // 2], pending)
            self._post(rows[len(rows) // 2 :], pending)
            return
        raise self._fatal(response, "submitting records")

    def _resolve_conflict(self, row: _Row, pending: _Pending) -> None:
        """The node holds another version of this record: ours may be its first version."""
        if not row.key:  # sent unparsed: the node accepted it as valid, so this parses
            row.key = ledger.record_key_of(ledger.parse_record(row.record)).hex()
        response = self._send("GET", f"/v1/records/{row.key}", "reading a conflicting record")
        if response.status_code == 200:
            versions = response.json().get("versions") or []
            if versions:
                self._know(row.key, int(versions[-1]["version"]))
            first = versions[0].get("record") if versions else None
            ours = ledger.parse_record(row.record).canonical_bytes()
            if first is not None and ledger.parse_record(first).canonical_bytes() == ours:
                pending.count("unchanged")  # imported before, corrected since
                return
            latest = versions[-1]["version"] if versions else "?"
            pending.reject(
                row.line,
                "record_id",
                f"the node holds a different record with this identity (version {latest}); "
                "send changes as a correction (op correct)",
            )
            return
        raise self._fatal(response, "reading a conflicting record")

    # ----------------------------------------------------------------- corrections, revocations

    def _latest_version(self, row: _Row) -> int | None:
        """The node's latest version of the row's record (None: no such record)."""
        known = self.known.get(row.key)
        if known is not None:
            return known
        response = self._send("GET", f"/v1/records/{row.key}", f"line {row.line}: reading")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fatal(response, f"line {row.line}: reading the record")
        latest = int(response.json()["latest_version"])
        self._know(row.key, latest)
        return latest

    def _apply(self, row: _Row, pending: _Pending) -> None:
        what = f"line {row.line}: {row.op}"
        if row.version is not None:
            latest = self._latest_version(row)
            if latest is not None and latest >= row.version:
                pending.count("unchanged")  # applied before (an earlier run)
                return
        if row.op == "correct":
            response = self._send("PUT", f"/v1/records/{row.key}", what, json=row.record)
            done = "corrected"
        else:
            response = self._send(
                "POST", f"/v1/records/{row.key}/revoke", what, json={"reason": row.reason}
            )
            done = "revoked"
        if response.status_code == 202:
            result = response.json()
            pending.count(done if result.get("created") else "unchanged")
            self._know(row.key, int(result["version"]))
            return
        answer = _json_or_none(response)
        if response.status_code == 404:
            pending.reject(
                row.line,
                "record_id",
                f"no record with this identity at the node to {row.op} (import it first)",
            )
            return
        if response.status_code in (409, 422) and isinstance(answer, dict):
            pending.reject(
                row.line,
                str(answer.get("field") or "record"),
                str(answer.get("reason") or answer.get("message") or answer.get("error")),
            )
            return
        raise self._fatal(response, what)

    # ----------------------------------------------------------------- checkpoint

    def _checkpoint(self, pending: _Pending | None, *, durable: bool) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "file": str(self.o.path.resolve()),
            "node": self.o.node_url,
            "region": self.region,
            "input_format": self.fmt,
            "offset": self.offset,
            "line": self.line,
            "sha256": self.sha256,
            "rejects_bytes": self.rejects_bytes,
            "counts": self.counts,
            "pending": asdict(pending) if pending else None,
            "updated_at": time.time(),
        }
        path = self.o.checkpoint
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(state, f, ensure_ascii=False)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        # The rename is atomic: a killed import leaves the old or the new checkpoint.
        os.replace(tmp, path)

    def _load_checkpoint(self) -> dict[str, Any] | None:
        path = self.o.checkpoint
        if self.o.restart or not path.is_file():
            return None
        try:
            state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            self.log(f"ignoring unreadable checkpoint {path}: {e}")
            return None
        if state.get("format") != CHECKPOINT_FORMAT:
            self.log(f"ignoring checkpoint {path}: unknown format")
            return None
        if state.get("file") != str(self.o.path.resolve()) or state.get("region") != self.region:
            self.log(f"checkpoint {path} is of another file or region; importing from line 1")
            return None
        return state

    # ----------------------------------------------------------------- main loop

    def run(self) -> ImportSummary:
        started = time.monotonic()
        self.fmt = detect_format(self.o.path, self.o.fmt)
        self.region = self.node_region()
        state = self._load_checkpoint()
        hasher = hashlib.sha256()
        resumed_at: int | None = None
        pending_state: dict[str, Any] | None = None
        with self.o.path.open("rb") as f:
            header: list[str] | None = None
            if state is not None:
                header_ok = True
                if self.fmt == "csv":
                    first = f.readline()
                    header = _check_header(
                        next(csv.reader([first.decode("utf-8", "surrogateescape")]), [])
                    )
                    f.seek(0)
                    header_ok = state.get("input_format") == "csv"
                if header_ok and _prefix_matches(f, hasher, state["offset"], state["sha256"]):
                    self.offset, self.line = int(state["offset"]), int(state["line"])
                    self.sha256 = state["sha256"]
                    self.counts = {k: int(state["counts"].get(k, 0)) for k in _COUNT_KEYS}
                    self.rejects_bytes = int(state.get("rejects_bytes", 0))
                    pending_state = state.get("pending")
                    resumed_at = self.line + 1
                else:
                    self.log("the file changed since the checkpoint; importing from line 1")
                    hasher = hashlib.sha256()
                    f.seek(0)
            self._open_rejects(resume=resumed_at is not None)
            reader = _Reader(f, self.fmt, self.offset, self.line, hasher)
            if header is not None and self.offset > 0:
                reader.header = header
            try:
                self._loop(reader, pending_state)
            finally:
                self._rejects.close()
        return ImportSummary(
            file=str(self.o.path),
            node=self.o.node_url,
            region=self.region,
            format=self.fmt,
            counts=dict(self.counts),
            resumed_at_line=resumed_at,
            rows_this_run=self.rows_this_run,
            rejects_file=str(self.o.rejects),
            checkpoint_file=str(self.o.checkpoint),
            seconds=round(time.monotonic() - started, 3),
        )

    def _open_rejects(self, *, resume: bool) -> None:
        path = self.o.rejects
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume and path.is_file() and path.stat().st_size >= self.rejects_bytes > 0:
            self._rejects = path.open("r+b")
            self._rejects.truncate(self.rejects_bytes)  # drop rows of an unfinished chunk
            self._rejects.seek(self.rejects_bytes)
            return
        self._rejects = path.open("wb")
        self._rejects.write(b"row,field,reason\n")
        self._rejects.flush()
        self.rejects_bytes = self._rejects.tell()

    def _write_rejects(self, rejects: list[tuple[int, str, str]]) -> None:
        if rejects:
            buffer = _CsvBuffer()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows(sorted(rejects))
            self._rejects.write(buffer.value.encode("utf-8", "backslashreplace"))
        self._rejects.flush()
        os.fsync(self._rejects.fileno())
        self.rejects_bytes = self._rejects.tell()

    def _chunks(
        self, reader: _Reader, resume: dict[str, Any] | None
    ) -> Iterator[tuple[list[_Row], _Pending]]:
        """Read and validate chunks; each comes with its end offset, line and input hash."""
        rows = reader.rows()
        while True:
            chunk: list[_Row] = []
            creates = 0
            # A chunk ends after chunk_size new records, or after 4x as many rows of any
            # kind (a file of corrections or rejects must not grow a chunk without bound).
            # The unfinished chunk of a checkpoint ends where it ended then.
            for line, end, item in rows:
                row = _classify(line, end, item, self.region)
                chunk.append(row)
                if row.reject is None and row.op == "create":
                    creates += 1
                if resume is not None:
                    if end >= int(resume["chunk_end"]):
                        break
                elif creates >= self.chunk_size or len(chunk) >= 4 * self.chunk_size:
                    break
            if not chunk:
                return
            pending = _Pending(reader.offset, reader.line, reader.hasher.hexdigest())
            if resume is not None:
                if (
                    resume["chunk_end"] == pending.chunk_end
                    and resume["chunk_sha256"] == pending.chunk_sha256
                ):
                    pending = _Pending(**resume)
                    pending.rejects = [(int(r[0]), str(r[1]), str(r[2])) for r in resume["rejects"]]
                else:
                    self.log("the unfinished chunk changed since the checkpoint; sending it again")
                resume = None
            yield chunk, pending

    def _loop(self, reader: _Reader, resume: dict[str, Any] | None) -> None:
        # Reading and validating the next chunk overlaps with the node storing this one:
        # both take about as long per record, so the import runs at the node's pace.
        ahead: queue.Queue[Any] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def offer(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for chunk, pending in self._chunks(reader, resume):
                    keys = None if pending.creates_done else _new_record_keys(chunk)
                    if not offer((chunk, pending, keys)):
                        return
                offer(None)
            except BaseException as e:  # handed to the sending thread, raised there
                offer(e)

        producer = threading.Thread(target=produce, name="import-reader", daemon=True)
        producer.start()
        # Two chunks in flight: the node validates the next chunk while it stores this one.
        # Only chunks of new records whose keys the other does not hold, so neither can
        # change what the other stores; the answers are taken, and checkpointed, in order.
        sender = ThreadPoolExecutor(max_workers=2, thread_name_prefix="import-send")
        in_flight: tuple[list[_Row], _Pending, Future[httpx.Response | None]] | None = None
        in_flight_keys: frozenset[str] = frozenset()
        try:
            while True:
                got = ahead.get()
                if got is None:
                    break
                if isinstance(got, BaseException):
                    raise got
                chunk, pending, keys = got
                if in_flight is not None and (keys is None or keys & in_flight_keys):
                    self._send_chunk(*in_flight)
                    in_flight = None
                if keys is None:
                    self._send_chunk(chunk, pending)
                    continue
                early = sender.submit(self._post_early, [r for r in chunk if r.reject is None])
                if in_flight is not None:
                    self._send_chunk(*in_flight)
                in_flight, in_flight_keys = (chunk, pending, early), keys
            if in_flight is not None:
                self._send_chunk(*in_flight)
        finally:
            stop.set()
            # After an error or Ctrl-C a chunk may still be on its way: not waited for (the
            # client is closed next); the checkpoint does not count it, a re-run resends it.
            sender.shutdown(wait=False, cancel_futures=True)
            producer.join(timeout=5)

    def _post_early(self, rows: list[_Row]) -> httpx.Response | None:
        """Send new records ahead, once; None when that failed and they must be sent again."""
        if not rows:
            return None
        try:
            return self._send(
                "POST",
                "/v1/records",
                "sending ahead",
                attempts=1,
                content=_records_body(rows),
                headers=_JSON,
            )
        except CliError:
            return None

    def _send_chunk(
        self,
        chunk: list[_Row],
        pending: _Pending,
        early: Future[httpx.Response | None] | None = None,
    ) -> None:
        local_rejects = [(r.line, r.reject[0], r.reject[1]) for r in chunk if r.reject]
        if not pending.creates_done:
            self._post(
                [r for r in chunk if r.reject is None and r.op == "create"],
                pending,
                early.result() if early is not None else None,
            )
            pending.creates_done = True
            self._checkpoint(pending, durable=False)
            self.progress(self.offset, self._with(pending, len(chunk), len(local_rejects)))
        ops = [r for r in chunk if r.reject is None and r.op != "create"]
        for index, row in enumerate(ops):
            if index < pending.ops_done:
                continue
            self._apply(row, pending)
            pending.ops_done = index + 1
            # Not fsynced: this guards against a killed process, for which the page cache
            # survives; a power cut can replay a few corrections, each a no-op at the node.
            self._checkpoint(pending, durable=False)
        self._write_rejects(local_rejects + pending.rejects)
        self.counts = self._with(pending, len(chunk), len(local_rejects))
        self.rows_this_run += len(chunk)
        self.offset, self.line, self.sha256 = (
            pending.chunk_end,
            pending.chunk_line,
            pending.chunk_sha256,
        )
        self._checkpoint(None, durable=True)
        self.progress(self.offset, self.counts)

    def _with(self, pending: _Pending, rows: int, local_rejects: int) -> dict[str, int]:
        counts = dict(self.counts)
        counts["rows"] += rows
        counts["rejected"] += local_rejects
        for key, value in pending.counts.items():
            counts[key] += value
        return counts


def _new_record_keys(chunk: list[_Row]) -> frozenset[str] | None:
    """Record keys of a chunk of new records only; None if it has other operations."""
    keys: set[str] = set()
    for row in chunk:
        if row.reject is not None:
            continue
        if row.op != "create" or row.record is None:
            return None
        if not row.key:
            r = row.record
            try:
                key = ledger.record_key(r["region"], r["uscc"], r["record_type"], r["record_id"])
            except (RecordError, KeyError, TypeError, ValueError):
                return None  # the node will refuse the record; send this chunk alone
            row.key = key.hex()
        keys.add(row.key)
    return frozenset(keys)


def _records_body(rows: list[_Row]) -> bytes:
    return b"[" + b",".join(_row_json(r) for r in rows) + b"]"


def _row_json(row: _Row) -> bytes:
    if row.raw is not None:
        return row.raw
    return json.dumps(row.record, ensure_ascii=False).encode("utf-8")


class _CsvBuffer:
    """A write-only text sink for csv.writer."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    @property
    def value(self) -> str:
        return "".join(self.parts)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _prefix_matches(f: IO[bytes], hasher: Any, offset: int, expected: str) -> bool:
    """Hash the first ``offset`` bytes into ``hasher``; True if they give ``expected``."""
    remaining = offset
    while remaining > 0:
        block = f.read(min(_HASH_BLOCK, remaining))
        if not block:
            return False
        hasher.update(block)
        remaining -= len(block)
    return bool(hasher.hexdigest() == expected)


def run_import(
    options: ImportOptions,
    *,
    progress: Callable[[int, dict[str, int]], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
    http: httpx.Client | None = None,
) -> ImportSummary:
    """Import ``options.path`` into the node; see the module docstring."""
    if not options.path.is_file():
        raise CliError(f"no such file: {options.path}")
    if not options.api_key:
        raise CliError("an operator API key is needed: --api-key or CREDIT_LEDGER_API_KEY")
    own_client = http is None
    client = http or httpx.Client(
        base_url=options.node_url.rstrip("/"),
        headers={
            "Authorization": f"Bearer {options.api_key}",
            "X-Purpose": "bulk import",
            "User-Agent": "credit-ledger-cli",
        },
        timeout=options.timeout,
    )
    try:
        return _Import(options, client, progress, log).run()
    finally:
        if own_client:
            client.close()
