"""Hostile HTTP input, part 2: malformed and abusive requests against a real uvicorn process.

Oversized bodies (declared and chunked), deeply nested JSON, invalid UTF-8, wrong content
types, huge lists and numbers, and slow clients. Each gets a 4xx (or a closed
connection), the process survives, concurrent well-behaved requests keep being answered,
and nothing is stored (the database counts do not move).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hardening_env import (
    BEIJING,
    NodeProcess,
    bearer,
    db_counts,
    db_path,
    node_env,
    report_figures,
)

from node_api.testing import LocalConsortium, sample_record

pytestmark = [pytest.mark.chain, pytest.mark.integration]

MAX_BODY = 8 * 1024 * 1024
MAX_PACKAGE = 2 * 1024 * 1024
BODY_TIMEOUT = 2.0
KEY = "ab" * 32
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
JSON_ROUTES = (
    ("POST", "/v1/records"),
    ("PUT", f"/v1/records/{KEY}"),
    ("POST", f"/v1/records/{KEY}/revoke"),
    ("POST", "/v1/verify"),
    ("POST", "/v1/integrity/check"),
)
ALL_BODY_ROUTES = (*JSON_ROUTES, ("POST", "/v1/exchange/import"))


@dataclass
class Hostile:
    """The node process under attack and a tally of what it answered."""

    node: NodeProcess
    data_dir: Path
    figures: dict[str, Any] = field(
        default_factory=lambda: {"attacks": 0, "statuses": {}, "stored": 0, "bystander_requests": 0}
    )

    def counts(self) -> dict[str, int]:
        return db_counts(db_path(self.data_dir))

    def send(
        self, method: str, path: str, body: bytes | Iterator[bytes], content_type: str | None
    ) -> int | None:
        """One hostile request; its status, or None if the server closed the connection."""
        headers = bearer("operator")
        if content_type is not None:
            headers["Content-Type"] = content_type
        self.figures["attacks"] += 1
        try:
            status = self.node.http.request(
                method, path, content=body, headers=headers, timeout=120
            ).status_code
        except httpx.TransportError:
            status = None
        key = str(status)
        self.figures["statuses"][key] = self.figures["statuses"].get(key, 0) + 1
        return status


@pytest.fixture(scope="module")
def hostile(
    consortium: LocalConsortium, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    data_dir = tmp_path_factory.mktemp("hostile")
    env = node_env(
        consortium,
        data_dir,
        BEIJING,
        worker_mode="off",
        max_body_bytes=str(MAX_BODY),
        max_package_bytes=str(MAX_PACKAGE),
        request_body_timeout_seconds=str(BODY_TIMEOUT),
    )
    node = NodeProcess(data_dir, env)
    try:
        assert (
            node.http.post("/v1/records", json=[sample_record() for _ in range(5)]).status_code
            == 202
        )
        target = Hostile(node, data_dir)
        yield target
        report_figures("hostile_http", target.figures)
    finally:
        node.stop()


class Bystander:
    """Well-behaved requests in a thread while an attack runs: health reads and small submits."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.answers: list[tuple[str, int, float]] = []
        self.errors: list[str] = []
        self.accepted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.node.url, headers=bearer("operator"), timeout=30) as http:
            while not self._stop.is_set():
                for name, call in (
                    ("health", lambda: http.get("/v1/health")),
                    ("submit", lambda: http.post("/v1/records", json=[sample_record()])),
                ):
                    started = time.monotonic()
                    try:
                        response = call()
                    except httpx.HTTPError as e:
                        self.errors.append(f"{name}: {e!r}")
                        continue
                    self.answers.append((name, response.status_code, time.monotonic() - started))
                    if name == "submit" and response.status_code == 202:
                        self.accepted.append(response.json()["records"][0]["record_key"])
                self._stop.wait(0.05)

    def __enter__(self) -> Bystander:
        self._thread.start()
        self._wait_for(1)
        return self

    def __exit__(self, *_: object) -> None:
        # A few more rounds after the attack: the node must still answer once it is over.
        self._wait_for(len(self.answers) + 4)
        self._stop.set()
        self._thread.join(60)

    def _wait_for(self, answers: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.answers) + len(self.errors) < answers and time.monotonic() < deadline:
            time.sleep(0.02)

    def assert_unaffected(self) -> None:
        """Every well-behaved request was answered, correctly, within a few seconds."""
        assert not self.errors, self.errors[:5]
        assert self.answers, "no well-behaved request completed during the attack"
        bad = [a for a in self.answers if a[1] not in (200, 202) or a[2] > 10]
        assert not bad, bad[:5]


def _assert_nothing_stored(
    target: Hostile, before: dict[str, int], bystander: Bystander | None = None
) -> None:
    after = target.counts()
    legitimate = len(bystander.accepted) if bystander else 0
    stored = after["record_versions"] - before["record_versions"] - legitimate
    if bystander is not None:
        target.figures["bystander_requests"] += len(bystander.answers)
    target.figures["stored"] += abs(stored) + after["batches"] - before["batches"]
    assert after["records"] == before["records"] + legitimate, (before, after, legitimate)
    assert after["record_versions"] == before["record_versions"] + legitimate
    assert after["batches"] == before["batches"]
    assert target.node.process.poll() is None, target.node.tail()


def _is_refusal(status: int | None) -> bool:
    return status is None or 400 <= status < 500


def test_oversized_bodies_are_refused_unread(hostile: Hostile) -> None:
    before = hostile.counts()
    big = b"[" + b"0," * (MAX_BODY // 2) + b"0]"
    with Bystander(hostile.node) as bystander:
        for method, path in ALL_BODY_ROUTES:
            content_type = "application/x-ndjson" if path.endswith("import") else "application/json"
            declared = hostile.send(method, path, big, content_type)
            assert declared in (413, None), (method, path, declared)

            def chunked() -> Iterator[bytes]:
                chunk = b"0," * 32768
                for _ in range(len(big) // len(chunk) + 2):
                    yield chunk

            streamed = hostile.send(method, path, chunked(), content_type)
            assert streamed in (413, None), (method, path, streamed)
    bystander.assert_unaffected()
    _assert_nothing_stored(hostile, before, bystander)


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
def test_deeply_nested_json_is_refused(hostile: Hostile, body: bytes) -> None:
    before = hostile.counts()
    with Bystander(hostile.node) as bystander:
        for method, path in JSON_ROUTES:
            status = hostile.send(method, path, body, "application/json")
            assert status is not None and 400 <= status < 500, (method, path, status)
        # In a package: as a disclosure line and as the trailer.
        for package in (body + b"\n" + b'{"manifest": {}}\n', b"{}\n" + body + b"\n"):
            status = hostile.send("POST", "/v1/exchange/import", package, "application/x-ndjson")
            assert status is not None and 400 <= status < 500, status
    bystander.assert_unaffected()
    _assert_nothing_stored(hostile, before, bystander)


def test_invalid_utf8_is_refused(hostile: Hostile) -> None:
    before = hostile.counts()
    record = json.dumps(sample_record()).encode()
    bodies = [
        b"\xff\xfe\xfd",
        record.replace(b'"issued_by": "', b'"issued_by": "\xc3\x28', 1),
        b'{"reason": "\xed\xa0\x80"}',  # an encoded surrogate
        b"\xef\xbb\xbf" + record,  # a byte-order mark
    ]
    for method, path in ALL_BODY_ROUTES:
        content_type = "application/x-ndjson" if path.endswith("import") else "application/json"
        for body in bodies:
            status = hostile.send(method, path, body, content_type)
            assert status is not None and 400 <= status < 500, (method, path, body[:20], status)
    _assert_nothing_stored(hostile, before)


def test_wrong_content_types_are_refused(hostile: Hostile) -> None:
    before = hostile.counts()
    record = json.dumps(sample_record()).encode()
    for content_type in (
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ):
        status = hostile.send("POST", "/v1/records", record, content_type)
        assert status == 415, (content_type, status)
        for method, path in JSON_ROUTES[1:]:
            status = hostile.send(method, path, b'{"reason": "x"}', content_type)
            assert status is not None and 400 <= status < 500, (method, path, content_type, status)
        status = hostile.send("POST", "/v1/exchange/import", b"{}\n", content_type)
        assert status == 415, (content_type, status)
    _assert_nothing_stored(hostile, before)


def test_huge_lists_and_numbers_are_refused(hostile: Hostile) -> None:
    before = hostile.counts()
    with Bystander(hostile.node) as bystander:
        over = json.dumps([sample_record() for _ in range(10_001)]).encode()
        assert len(over) < MAX_BODY
        assert hostile.send("POST", "/v1/records", over, "application/json") == 413
        junk = json.dumps(list(range(200_000))).encode()
        assert hostile.send("POST", "/v1/records", junk, "application/json") == 413
        # All or nothing: 4,999 valid records and one invalid store nothing.
        mixed = [sample_record() for _ in range(4_999)] + [{**sample_record(), "uscc": "X"}]
        status = hostile.send("POST", "/v1/records", json.dumps(mixed).encode(), "application/json")
        assert status == 422
        for body in (b"[" + b"9" * 5000 + b"]", b'{"region": ' + b"1" * 100_000 + b"}"):
            for method, path in JSON_ROUTES:
                status = hostile.send(method, path, body, "application/json")
                assert status is not None and 400 <= status < 500, (method, path, status)
        huge_string = json.dumps({**sample_record(), "record_id": "x" * (6 * 1024 * 1024)})
        status = hostile.send("POST", "/v1/records", huge_string.encode(), "application/json")
        assert status == 422
    bystander.assert_unaffected()
    _assert_nothing_stored(hostile, before, bystander)


def _stalled_request(
    node: NodeProcess, method: str, path: str, declared: int, sent: bytes
) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {bearer('operator')['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    conn.sendall(head + sent)
    return conn


def _read_until_closed(conn: socket.socket, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            break
        except OSError:
            break
        if not chunk:
            return data + b"<closed>"
        data += chunk
    return data


def test_a_stalled_body_is_cut_off_and_others_are_served(hostile: Hostile) -> None:
    before = hostile.counts()
    with Bystander(hostile.node) as bystander:
        stalled = [
            _stalled_request(hostile.node, method, path, 10_000, b'[{"schema": "credit-ledger')
            for method, path in JSON_ROUTES
            for _ in range(20)
        ]
        deadline = time.monotonic() + BODY_TIMEOUT + 15
        answers = [_read_until_closed(conn, deadline) for conn in stalled]
        for conn in stalled:
            conn.close()
    hostile.figures["stalled_bodies"] = len(stalled)
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408") or answer == b"<closed>", answer[:200]
        assert answer.endswith(b"<closed>"), "the connection of a stalled body stayed open"
    bystander.assert_unaffected()
    _assert_nothing_stored(hostile, before, bystander)


def test_trickled_headers_do_not_starve_other_clients(hostile: Hostile) -> None:
    # uvicorn has no header timeout (a reverse proxy's job, see the README); what the node
    # must guarantee is that slow clients cost it a socket each, not its capacity.
    before = hostile.counts()
    slow = []
    for _ in range(200):
        conn = socket.create_connection(("127.0.0.1", hostile.node.port), timeout=30)
        conn.sendall(b"POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(conn)
    hostile.figures["trickling_clients"] = len(slow)
    try:
        with Bystander(hostile.node) as bystander:
            for second in range(4):
                for conn in slow:
                    conn.sendall(b"a")
                time.sleep(1)
                assert second >= 0
        bystander.assert_unaffected()
    finally:
        for conn in slow:
            conn.close()
    _assert_nothing_stored(hostile, before, bystander)
