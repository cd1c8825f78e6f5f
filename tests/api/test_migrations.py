"""Schema migrations: upgrading an existing database, components, refusals (SQLite, PostgreSQL)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from node_harness import OPERATOR, Node
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

import ledger
from node_api.config import Settings
from node_api.db import (
    COMPONENTS,
    CORE,
    Component,
    Database,
    Migration,
    SchemaError,
    current_versions,
    migrate,
)
from node_api.db.tables import api_keys, batches, node_meta, record_versions, records
from node_api.keys import load_node_secret
from node_api.services import NodeConfigError, Services
from node_api.testing import sample_record

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    make: Callable[[], str] = request.getfixturevalue("pg_schema_url")
    return make()


def _write_v1_rows(db: Database, record: dict[str, object]) -> bytes:
    """Rows as a version-1 node wrote them: one pending version and one old batch."""
    key = ledger.record_key_of(record)  # type: ignore[arg-type]
    salt = ledger.derive_salt(b"k" * 32, key, 1)
    commitment = ledger.commitment(salt, record)  # type: ignore[arg-type]
    leaf = ledger.leaf_hash(key, 1, 1, bytes(32), commitment)
    now = time.time()
    with db.write() as conn:
        conn.execute(
            records.insert().values(
                record_key=key,
                region=110000,
                uscc=record["uscc"],
                record_type=record["record_type"],
                record_id=record["record_id"],
                latest_version=1,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            record_versions.insert().values(
                record_key=key,
                version=1,
                status=1,
                record_json=ledger.canonicalize(record).decode(),  # type: ignore[arg-type]
                salt=salt,
                commitment=commitment,
                prev_leaf=bytes(32),
                leaf_hash=leaf,
                submitted_at=now,
            )
        )
        # v1 had no send bookkeeping columns: insert through the v1 column list only.
        conn.execute(
            text(
                "INSERT INTO batches (seq, size, root, manifest_hash, leaves_digest, state, "
                "sealed_at) VALUES (:seq, 1, :root, :m, :d, 'conflict', :t)"
            ),
            {
                "seq": 10_000_000,
                "root": b"\x01" * 32,
                "m": b"\x02" * 32,
                "d": b"\x03" * 32,
                "t": now,
            },
        )
        conn.execute(text("INSERT INTO node_meta (key, value) VALUES ('region', '110000')"))
    return key


def test_upgrades_a_version_1_database_and_keeps_its_data(
    database_url: str,
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
) -> None:
    db = Database(database_url)
    assert migrate(db, (CORE,), target={"node": 1}) == {"node": 1}
    with db.read() as conn:
        assert "leases" not in inspect(conn).get_table_names()
        assert "send_attempts" not in {c["name"] for c in inspect(conn).get_columns("batches")}
    record = sample_record()
    key = _write_v1_rows(db, record)

    upgraded = migrate(db, COMPONENTS)
    assert upgraded == {c.name: c.head for c in COMPONENTS} and upgraded["node"] == CORE.head
    assert current_versions(db) == upgraded
    with db.read() as conn:
        assert {"leases", "api_keys", "member_nonces", "access_log"} <= set(
            inspect(conn).get_table_names()
        )
        old = conn.execute(select(batches).where(batches.c.seq == 10_000_000)).one()
        assert (old.state, old.send_attempts, old.last_error) == ("conflict", 0, None)
        # v4 numbered the old record and keyed its version by that number.
        assert conn.execute(
            select(record_versions.c.version, record_versions.c.rec_no).where(
                record_versions.c.record_key == key
            )
        ).one() == (1, 1)
        assert conn.execute(select(records.c.rec_no)).scalar_one() == 1
        unique = {
            tuple(u["column_names"])
            for u in inspect(conn).get_unique_constraints("record_versions")
        }
        assert unique == {("rec_no", "version")}
    db.dispose()

    # A node started on the upgraded database serves the old record, corrects it, and
    # numbers a new record after it.
    node = start_node(make_settings(database_url=database_url))
    body = node.client.get(f"/v1/records/{key.hex()}", headers=OPERATOR).json()
    assert body["versions"][0]["record"] == record and body["versions"][0]["state"] == "queued"
    corrected = copy.deepcopy(record)
    corrected["data"]["listed_on"] = "2024-07-02"  # type: ignore[index]
    response = node.client.put(f"/v1/records/{key.hex()}", json=corrected, headers=OPERATOR)
    assert response.status_code == 202, response.text
    assert response.json()["version"] == 2
    new_key = node.submit([sample_record()])["records"][0]["record_key"]
    history = node.client.get(f"/v1/records/{key.hex()}", headers=OPERATOR).json()["versions"]
    assert [(v["version"], v["record"]) for v in history] == [(1, record), (2, corrected)]
    db = Database(database_url)
    with db.read() as conn:
        numbers = conn.execute(
            select(
                record_versions.c.record_key, record_versions.c.version, record_versions.c.rec_no
            ).order_by(record_versions.c.id)
        ).all()
    db.dispose()
    assert [(bytes(k).hex(), v, n) for k, v, n in numbers] == [
        (key.hex(), 1, 1),
        (key.hex(), 2, 1),
        (new_key, 1, 2),
    ]


def test_migrating_twice_is_a_no_op_and_steps_are_recorded(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate(db, COMPONENTS)
    migrate(db, COMPONENTS)
    with db.read() as conn:
        steps = conn.execute(
            text("SELECT component, version, name FROM schema_version ORDER BY version")
        ).all()
    assert [(c, v) for c, v, _ in steps if c == "node"] == [
        ("node", v) for v in range(1, CORE.head + 1)
    ]
    assert len(steps) == sum(c.head for c in COMPONENTS)


def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate(db, COMPONENTS)
    with db.write() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES ('node', 99, 'future', 0)"))
    with pytest.raises(SchemaError, match="v99"):
        migrate(db, COMPONENTS)


def test_other_components_add_their_tables_with_their_own_numbering(tmp_path: Path) -> None:
    def create_reports(conn: Connection) -> None:
        meta = MetaData()
        Table(
            "integrity_reports",
            meta,
            Column("id", Integer, primary_key=True),
            Column("peer", String(20)),
        )
        meta.create_all(conn)

    exchange = Component("exchange", (Migration(1, "integrity reports", create_reports),))
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    assert migrate(db, (CORE, exchange)) == {"node": CORE.head, "exchange": 1}
    with db.read() as conn:
        assert "integrity_reports" in inspect(conn).get_table_names()
    with pytest.raises(SchemaError):
        Component("bad", (Migration(2, "gap", create_reports),))


def _concurrently(step: Callable[[], object], starts: int = 4) -> list[BaseException]:
    """``starts`` threads running ``step`` at once, as processes starting together; errors."""
    errors: list[BaseException] = []
    gate = threading.Barrier(starts)

    def run() -> None:
        try:
            gate.wait()
            step()
        except BaseException as e:  # collected for the caller's assertion
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(starts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _migrate_concurrently(url: str, starts: int = 4) -> list[BaseException]:
    """``starts`` threads migrating ``url`` at once, as nodes starting together; their errors."""
    return _concurrently(lambda: migrate(Database(url), COMPONENTS), starts)


def test_concurrent_starts_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    errors = _migrate_concurrently(url)
    assert errors == []
    assert current_versions(Database(url)) == {c.name: c.head for c in COMPONENTS}


def test_a_process_waits_for_a_long_migration_of_another_on_sqlite(tmp_path: Path) -> None:
    # v4 rewrites a table for minutes on a large database while holding the write lock; a
    # second process of the node starting meanwhile failed after the lock timeout.
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrating = Database(url)
    migrate(migrating, (CORE,), target={"node": 3})
    held, finishing = threading.Event(), threading.Event()

    def long_step() -> None:
        with migrating.write():
            held.set()
            time.sleep(1.5)  # several times the other process's lock timeout
            finishing.set()

    holder = threading.Thread(target=long_step)
    holder.start()
    held.wait()
    other = Database(url, lock_timeout=0.2)
    assert migrate(other, COMPONENTS) == {c.name: c.head for c in COMPONENTS}
    assert finishing.is_set()  # it got the lock only after the long transaction
    holder.join()
    other.dispose()
    migrating.dispose()


def test_api_processes_starting_together_on_a_fresh_database(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # uvicorn --workers 2 on a fresh PostgreSQL database: both processes found no region
    # (and no API keys) and inserted them; the second died on a unique violation and took
    # the node down with it. Every start claims the region and syncs the keys serialized.
    started: list[Services] = []

    def start() -> None:
        started.append(Services.build(make_settings(database_url=database_url), start_worker=False))

    try:
        errors = _concurrently(start, starts=4)
    finally:
        for services in started:
            services.close()
    assert errors == []
    db = Database(database_url)
    with db.read() as conn:
        region = conn.execute(select(node_meta.c.value).where(node_meta.c.key == "region"))
        assert region.scalars().all() == ["110000"]
        roles = conn.execute(select(api_keys.c.role)).scalars().all()
    assert sorted(roles) == ["auditor", "operator", "verifier"]
    assert len(bytes.fromhex((tmp_path / "node" / "node-secret").read_text())) == 32


def test_serialized_writes_run_one_at_a_time(database_url: str) -> None:
    # The pattern of a second anchor request while another process holds the lease: delete
    # the request row, insert it again. Unserialized, PostgreSQL lets two of them insert.
    db = Database(database_url)
    migrate(db, COMPONENTS)

    def request_anchor() -> None:
        for _ in range(20):
            with db.write(serialized=True) as conn:
                conn.execute(delete(node_meta).where(node_meta.c.key == "anchor_requested"))
                conn.execute(node_meta.insert().values(key="anchor_requested", value="now"))

    assert _concurrently(request_anchor, starts=6) == []


def test_sqlite_writes_share_one_connection_whose_large_page_cache_stays(
    tmp_path: Path,
) -> None:
    # Bulk intake inserts into B-trees keyed by random hashes: every write of a process runs
    # on one connection with a 256 MiB page cache, kept between transactions (also after a
    # failed one); reads use the pool, whose connections keep SQLite's default 2 MiB.
    db = Database(f"sqlite:///{tmp_path / 'n.db'}", pool_size=1)
    with db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -262144
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 250_000
        conn.exec_driver_sql("CREATE TABLE t (k BLOB PRIMARY KEY)")
        writer = conn.connection.dbapi_connection
    with pytest.raises(KeyError), db.write() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (x'01')")
        raise KeyError("rolled back")
    with db.write() as conn:
        assert conn.connection.dbapi_connection is writer
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -262144
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    with db.read() as conn:
        assert conn.connection.dbapi_connection is not writer
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


def test_sqlite_writers_of_a_process_queue_with_the_anchoring_worker_first(
    tmp_path: Path,
) -> None:
    # A bulk submission holds the write lock; another is waiting when the worker's short
    # transaction arrives: the worker's goes next, then the waiting submission.
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate(db, COMPONENTS)
    order: list[str] = []
    release = threading.Event()

    def write(name: str, urgent: bool, hold: threading.Event | None = None) -> None:
        with db.write(urgent=urgent) as conn:
            order.append(name)
            conn.execute(node_meta.insert().values(key=name, value=name))
            if hold is not None:
                hold.wait(30)

    holder = threading.Thread(target=write, args=("intake-1", False, release))
    holder.start()
    _wait_for(lambda: order == ["intake-1"])
    gate = db._write_gate
    assert gate is not None
    waiting = threading.Thread(target=write, args=("intake-2", False))
    waiting.start()
    _wait_for(lambda: gate._waiting == 1)  # intake-2 waits behind intake-1
    worker = threading.Thread(target=write, args=("worker", True))
    worker.start()
    _wait_for(lambda: gate._urgent_waiting == 1)
    release.set()
    for thread in (holder, waiting, worker):
        thread.join(30)
    assert order == ["intake-1", "worker", "intake-2"]
    with db.read() as conn:
        stored = conn.execute(select(node_meta.c.key).where(node_meta.c.key.in_(order))).scalars()
        assert sorted(stored) == ["intake-1", "intake-2", "worker"]


def test_a_sqlite_writer_waits_for_the_write_lock_at_most_lock_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}", lock_timeout=0.2)
    migrate(db, COMPONENTS)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        for urgent in (False, True):
            with (
                pytest.raises(OperationalError, match="database is locked"),
                db.write(urgent=urgent),
            ):
                pass
    finally:
        release.set()
        holder.join(30)
    with db.write() as conn:  # and the gate is free again
        conn.execute(node_meta.insert().values(key="after", value="x"))


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_processes_starting_together_generate_one_node_secret(tmp_path: Path) -> None:
    # O_EXCL on the name alone let a second process read the file before the first had
    # written it: an empty secret, and a node that refused to start.
    for attempt in range(30):
        path = tmp_path / f"n{attempt}" / "node-secret"
        seen: list[bytes] = []
        assert (
            _concurrently(lambda path=path, seen=seen: seen.append(load_node_secret(path)), 4) == []
        )
        assert len(set(seen)) == 1 and len(seen[0]) == 32
        assert path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["node-secret"]


def test_refuses_a_database_of_another_region(make_settings: Callable[..., Settings]) -> None:
    services = Services.build(make_settings(), start_worker=False)
    services.close()
    with pytest.raises(NodeConfigError, match="region 110000"):
        Services.build(make_settings(region=120000), start_worker=False)


def test_nodes_starting_together_on_a_fresh_file_never_see_a_locked_database(
    tmp_path: Path,
) -> None:
    # Switching a new file to WAL answered "database is locked" at once, without waiting,
    # while another connection held a lock: about 1 in 50 of these starts failed (CI).
    failures: list[BaseException] = []
    for attempt in range(30):
        failures += _migrate_concurrently(f"sqlite:///{tmp_path / f'n{attempt}.db'}")
    assert failures == []
