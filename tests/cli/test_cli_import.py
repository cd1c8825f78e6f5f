"""``credit-ledger import`` against a real node process on a real anvil: rejects, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cli_harness import (
    CLI,
    NodeServer,
    cli_env,
    expected_import,
    key,
    read_rejects,
    run_cli,
)

import ledger
from node_api.cli.importer import ImportOptions, run_import
from node_api.datagen import generate_items, write_items

pytestmark = [pytest.mark.chain, pytest.mark.timeout(420)]

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000


def _write(path: Path, region: int, count: int, seed: int, **rates: float) -> None:
    with path.open("w", encoding="utf-8") as f:
        write_items(generate_items(region, count, seed, **rates), f)


def _replace_lines(path: Path, replacements: dict[int, str]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line_no, text in replacements.items():
        lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _free_lines(path: Path) -> list[int]:
    """Lines of valid new records that no later correction or revocation refers to."""
    creates: dict[str, int] = {}
    referenced: set[str] = set()
    for line_no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        item = json.loads(text)
        record = item.get("record", item) if "op" in item else item
        try:
            record_key = ledger.record_key_of(record).hex()
        except ledger.RecordError:
            continue
        if "op" in item:
            referenced.add(record_key)
        else:
            creates.setdefault(record_key, line_no)
    return sorted(line for key, line in creates.items() if key not in referenced)


def _near(lines: list[int], target: int) -> int:
    return min(lines, key=lambda line: abs(line - target))


def _versions_at_node(node: NodeServer) -> dict[str, int]:
    rows = node.query("SELECT lower(hex(record_key)), max(version) FROM record_versions GROUP BY 1")
    return dict(rows)


def _import(node: NodeServer, path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = run_cli("import", str(path), *node.args(), "--json", *extra, timeout=400)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.strip(), f"exit {result.returncode}: {result.stderr}"
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
def test_imports_100k_rows_in_chunks_and_names_row_field_and_reason_of_each_reject(
    node_factory: Callable[..., NodeServer], tmp_path: Path
) -> None:
    # A large batch size: nothing is sealed during the import, the test is about intake.
    node = node_factory(BEIJING, batch_size="1048576")
    path = tmp_path / "beijing.jsonl"
    _write(path, BEIJING, 100_000, 17, correction_rate=0.002, revocation_rate=0.003,
           invalid_rate=0.002)  # fmt: skip
    lines = path.read_text(encoding="utf-8").splitlines()
    free = _free_lines(path)  # spoiling these leaves every later row valid
    record = json.loads(lines[free[0] - 1])  # a valid new record to spoil in a few ways
    at = [_near(free, n) for n in (5, 77, 50_000, 99_000, 100_000)]
    assert len(set(at)) == len(at)
    injected = {
        at[0]: ({**record, "uscc": record["uscc"][:17].lower() + "x"}, "uscc"),
        at[1]: ({**record, "issued_at": "2024-02-30"}, "issued_at"),
        at[2]: ("{not json", ""),
        at[3]: ({**record, "region": HEBEI}, "region"),
        at[4]: ({**record, "data": {**record["data"], "x": 1}}, "data.x"),
    }
    _replace_lines(
        path,
        {
            n: obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            for n, (obj, _) in injected.items()
        },
    )
    expected, versions = expected_import(path, BEIJING)
    assert set(injected) <= set(expected) and len(expected) > 150

    code, summary = _import(node, path)

    counts = summary["counts"]
    assert code == 3  # rows were rejected
    assert counts["rows"] == 100_000
    assert counts["rejected"] == len(expected)
    assert summary["accepted"] + counts["rejected"] == 100_000
    assert counts["created"] > 95_000 and counts["corrected"] > 100 and counts["revoked"] > 150
    rejects = read_rejects(Path(summary["rejects_file"]))
    assert [r[0] for r in rejects] == sorted(expected)  # each rejected row once, in order
    for row, field, reason in rejects:
        assert (field, True) == (expected[row][0], reason.startswith(expected[row][1])), row
    by_row = {r[0]: r for r in rejects}
    for row, (_, field) in injected.items():
        assert by_row[row][1] == field, by_row[row]
    assert "lower case" in by_row[at[0]][2]
    assert "2024-02-30" in by_row[at[1]][2]
    assert by_row[at[2]][2].startswith("not valid JSON")
    assert "130000" in by_row[at[3]][2]
    # What the node holds is exactly the file's accepted rows: no duplicates, none missing.
    assert _versions_at_node(node) == versions


def test_two_chunks_of_new_records_in_flight_but_not_two_with_one_identity(
    node_factory: Callable[..., NodeServer], tmp_path: Path
) -> None:
    node = node_factory(BEIJING, batch_size="1048576")
    path = tmp_path / "beijing.jsonl"
    _write(path, BEIJING, 300, 29, correction_rate=0.0, revocation_rate=0.0, invalid_rate=0.0)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Line 160 (fourth chunk of 50) reuses the identity of line 110 (third) with other content:
    # in file order the first one is the record and the second a reject.
    original = json.loads(lines[109])
    changed = dict(original, issued_by=original["issued_by"] + "（复核）")
    _replace_lines(path, {160: json.dumps(changed, ensure_ascii=False)})
    first_ids = {
        json.loads(lines[start])["record_id"]: start // 50 + 1 for start in range(0, 300, 50)
    }

    events: list[tuple[str, int]] = []
    sent = {chunk: threading.Event() for chunk in range(8)}

    def chunk_of(request: httpx.Request) -> int:
        return first_ids.get(json.loads(request.content)[0]["record_id"], 0)

    def on_request(request: httpx.Request) -> None:
        if request.method == "POST":
            events.append(("sent", chunk_of(request)))
            sent[chunk_of(request)].set()

    def on_response(response: httpx.Response) -> None:
        if response.request.method == "POST":
            chunk = chunk_of(response.request)
            if chunk in (1, 4):
                # Hold this answer until the next chunk is on its way (or 10 s).
                sent[chunk + 1].wait(10)
            events.append(("answered", chunk))

    options = ImportOptions(path, node.url, key("operator", BEIJING), chunk_size=50)
    with httpx.Client(
        base_url=node.url,
        headers={"Authorization": f"Bearer {key('operator', BEIJING)}"},
        event_hooks={"request": [on_request], "response": [on_response]},
        timeout=60,
    ) as http:
        summary = run_import(options, http=http)

    assert summary.counts["created"] == 299 and summary.counts["rejected"] == 1
    assert [r[:2] for r in read_rejects(options.rejects)] == [(160, "record_id")]
    assert events.index(("sent", 2)) < events.index(("answered", 1))  # two in flight
    assert events.index(("answered", 3)) < events.index(("sent", 4))  # not these two
    assert events.index(("sent", 5)) < events.index(("answered", 4))
    stored = node.query(
        "SELECT record_json FROM record_versions WHERE record_key = "
        f"x'{ledger.record_key_of(original).hex()}'"
    )
    assert [json.loads(row[0])["issued_by"] for row in stored] == [original["issued_by"]]


def test_resumes_after_being_killed_mid_chunk_without_duplicates(
    node_factory: Callable[..., NodeServer], tmp_path: Path
) -> None:
    node = node_factory(TIANJIN)
    path = tmp_path / "tianjin.jsonl"
    _write(path, TIANJIN, 6000, 23, invalid_rate=0.005)
    checkpoint = path.with_name(path.name + ".checkpoint.json")
    process = subprocess.Popen(
        [*CLI, "import", str(path), *node.args(), "--chunk-size", "2000", "--quiet"],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it while it applies the corrections and revocations of its first chunk: the
    # hardest place to resume (new records acknowledged, some operations applied).
    deadline = time.monotonic() + 120
    state = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            state = json.loads(checkpoint.read_text())
        except (OSError, ValueError):
            state = None
        if state and state["pending"] and state["pending"]["ops_done"] >= 5:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the import finished before it was killed"
    assert state is not None and state["offset"] == 0  # killed inside the first chunk

    code, summary = _import(node, path, "--chunk-size", "2000")

    counts = summary["counts"]
    expected, versions = expected_import(path, TIANJIN)
    assert code == 3
    assert summary["resumed_at_line"] == 1
    assert counts["rows"] == 6000
    assert counts["rejected"] == len(expected)
    assert summary["accepted"] == 6000 - len(expected)
    rejects = read_rejects(Path(summary["rejects_file"]))
    assert [r[0] for r in rejects] == sorted(expected)
    assert _versions_at_node(node) == versions

    # Once done, a re-run has nothing to send; without the checkpoint every row is sent
    # again and the node gains nothing (corrections carry their version).
    code, again = _import(node, path)
    assert again["rows_this_run"] == 0 and again["counts"] == counts
    code, replay = _import(node, path, "--restart", "--chunk-size", "2000")
    assert replay["rows_this_run"] == 6000
    assert replay["counts"]["created"] == replay["counts"]["corrected"] == 0
    assert replay["counts"]["revoked"] == 0
    assert replay["counts"]["rejected"] == len(expected)
    assert _versions_at_node(node) == versions


def test_imports_csv_with_line_numbers_of_the_file(hebei_node: NodeServer, tmp_path: Path) -> None:
    node = hebei_node
    jsonl = tmp_path / "hebei.jsonl"
    _write(jsonl, HEBEI, 400, 4)
    free = [n for n in _free_lines(jsonl) if n > 2]
    spoil = {free[0]: "region", free[5]: "data"}
    result = run_cli("generate", "--region", "130000", "-n", "400", "--format", "csv",
                     "--seed", "4", "-o", str(tmp_path / "hebei.csv"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = tmp_path / "hebei.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("op,version,reason,")
    # Item n of the JSON Lines file is line n + 1 of the CSV file (after the header).
    row_a, row_b = (n + 1 for n in spoil)
    lines[row_a - 1] = lines[row_a - 1].replace(",130000,", ",13x000,", 1)
    data_at = lines[row_b - 1].index(',"{')  # data, the last column, is a quoted JSON object
    lines[row_b - 1] = lines[row_b - 1][:data_at] + ',"{broken"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, summary = _import(node, path, "--anchor")

    assert summary["format"] == "csv"
    assert [(r[0], r[1]) for r in read_rejects(Path(summary["rejects_file"]))] == [
        (row_a, "region"),
        (row_b, "data"),
    ]
    assert summary["accepted"] == 398 and code == 3
    assert summary["counts"]["corrected"] + summary["counts"]["revoked"] > 0
    assert summary["anchor"]["anchored"], "--anchor anchors what was imported"


def test_unreachable_node_and_wrong_key_are_one_line_errors(
    hebei_node: NodeServer, tmp_path: Path
) -> None:
    path = tmp_path / "few.jsonl"
    _write(path, HEBEI, 20, 1)
    down = run_cli("import", str(path), "--node", "http://127.0.0.1:9", "--api-key", "k", "-q")
    assert down.returncode == 7
    assert down.stderr.strip().count("\n") == 0 and down.stderr.startswith("error: ")
    node = hebei_node
    wrong = run_cli("import", str(path), "--node", node.url, "--api-key", "nope", "-q")
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr and "Traceback" not in wrong.stderr
    debug = run_cli("--debug", "import", str(path), "--node", node.url, "--api-key", "nope")
    assert "Traceback" in debug.stderr
