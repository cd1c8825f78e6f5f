"""The three-region demo behind ``make run``: the whole consortium working on one machine.

Steps: the local chain (reused if running) with the contracts; three node processes
(Beijing 110000, Tianjin 120000, Hebei 130000), each with its own SQLite database, signer and
API keys, registering its URL on chain; synthetic data generated and bulk-imported; every
region anchors; Tianjin and Hebei import Beijing's exchange package, verify it against the
chain and endorse its batches; a tampered package is caught; Tianjin checks Hebei's data
pulled from Hebei's registered endpoint; an enterprise's history is gathered across the
three regions; a third party verifies receipts with nothing but the chain.

State lives in ``<local dir>/demo`` (data, checkpoints, node databases, API keys), so a
re-run resumes: the same seed regenerates the same data, the import checkpoints skip what
the nodes hold, nothing new is anchored, and batches already endorsed are not imported
again. If the chain was replaced (another deployment), the demo's node data belonged to
the old chain and is started afresh.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from node_api.cli.common import CliError, err, out
from node_api.cli.localchain import (
    FOUNDING_REGIONS,
    LocalPaths,
    RunningChain,
    default_local_dir,
    ensure_deployment,
    signer_key,
    start_chain,
    stop_started,
)

__all__ = ["DemoOptions", "run_demo"]

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000
NAMES = {BEIJING: "Beijing", TIANJIN: "Tianjin", HEBEI: "Hebei"}
_READY_TIMEOUT = 240.0  # three nodes importing web3 at once on two busy CPUs: up to a minute
_INVALID_RATE = 0.002  # a few rows with the mistakes real exports have, to show rejects
_SCAN_ROWS = 200_000  # rows per file scanned for the enterprise whose history is shown


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    count: int = 6000
    seed: int = 2024
    once: bool = False
    chain: str = "anvil"
    chain_port: int = 8545
    node_ports: tuple[int, int, int] = (8110, 8120, 8130)
    local_dir: Path | None = None


@dataclass
class _Node:
    region: int
    url: str
    keys: dict[str, str]
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{NAMES[self.region]} {self.region}"

    def http(self, role: str = "operator", purpose: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        if purpose:
            headers["X-Purpose"] = purpose
        return httpx.Client(base_url=self.url, headers=headers, timeout=900)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.directory / "node.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _step(title: str) -> float:
    out.print(Rule(f"[bold]{title}", align="left"))
    return time.monotonic()


def _done(started: float) -> None:
    out.print(f"[dim]({time.monotonic() - started:.1f} s)[/dim]")


def _json(response: httpx.Response, what: str, status: int = 200) -> Any:
    if response.status_code != status:
        raise CliError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


# --------------------------------------------------------------------------- state


def _demo_state(demo_dir: Path, deployment: Any) -> None:
    """Start the demo's node data afresh when the chain is not the one it was made on."""
    state_file = demo_dir / "state.json"
    current = {"chain_id": deployment.chain_id, "anchor": deployment.anchor}
    if state_file.is_file():
        try:
            previous = json.loads(state_file.read_text())
        except ValueError:
            previous = None
        if previous != current:
            out.print(
                "the chain holds another deployment than the demo's data was anchored on; "
                "starting the demo's nodes afresh"
            )
            for child in demo_dir.glob("node-*"):
                shutil.rmtree(child, ignore_errors=True)
            for child in (demo_dir / "data").glob("*.checkpoint.json"):
                child.unlink()
    demo_dir.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(current))


def _api_keys(demo_dir: Path) -> dict[int, dict[str, str]]:
    """Random API keys per region and role, made once and kept (0600) for re-runs."""
    path = demo_dir / "keys.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        return {int(region): keys for region, keys in stored.items()}
    keys = {
        code: {role: f"{role[:3]}-{code}-{secrets.token_urlsafe(18)}" for role in _ROLES}
        for code, _ in FOUNDING_REGIONS
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=1)
    return keys


_ROLES = ("operator", "verifier", "auditor")


# --------------------------------------------------------------------------- processes


def _stop_leftovers(demo_dir: Path) -> None:
    """Stop node processes an earlier demo run left behind (it was killed, not stopped)."""
    pid_file = demo_dir / "nodes.json"
    if not pid_file.is_file():
        return
    try:
        pids = [int(p) for p in json.loads(pid_file.read_text())]
    except (ValueError, TypeError):
        pids = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"node_api.cli" in cmdline and b"serve" in cmdline:
            out.print(f"stopping node process {pid} left by an earlier run")
            _terminate(pid)
    pid_file.unlink(missing_ok=True)


def _terminate(pid: int, timeout: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_node(node: _Node, chain: RunningChain, deployment_file: Path) -> None:
    node.directory.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    env.update(
        PYTHONPATH=package_root + os.pathsep + env.get("PYTHONPATH", ""),
        CREDIT_LEDGER_RPC_URL=chain.rpc_url,
        CREDIT_LEDGER_DEPLOYMENT_FILE=str(deployment_file),
        CREDIT_LEDGER_REGION=str(node.region),
        CREDIT_LEDGER_SIGNER_KEY=signer_key(node.region),
        CREDIT_LEDGER_DATA_DIR=str(node.directory),
        CREDIT_LEDGER_OPERATOR_KEYS=node.keys["operator"],
        CREDIT_LEDGER_VERIFIER_KEYS=node.keys["verifier"],
        CREDIT_LEDGER_AUDITOR_KEYS=node.keys["auditor"],
        CREDIT_LEDGER_PUBLIC_URL=node.url,
        CREDIT_LEDGER_BATCH_SIZE="4096",
        CREDIT_LEDGER_BATCH_MAX_AGE_SECONDS="600",
        CREDIT_LEDGER_LOG_FORMAT="json",
        CREDIT_LEDGER_LOG_LEVEL="INFO",
    )
    port = node.url.rsplit(":", 1)[1]
    with (node.directory / "node.log").open("ab") as log:
        node.process = subprocess.Popen(
            [sys.executable, "-m", "node_api.cli", "node", "serve",
             "--host", "127.0.0.1", "--port", port],
            cwd=node.directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the demo, which stops the nodes in order
        )  # fmt: skip


def _wait_ready(nodes: list[_Node], consortium: Any) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    with err.status("waiting for the nodes to start and register their URLs on chain..."):
        for node in nodes:
            while True:
                assert node.process is not None
                if node.process.poll() is not None:
                    raise CliError(f"the {node.name} node exited:\n{node.log_tail()}")
                try:
                    health = httpx.get(f"{node.url}/v1/health", timeout=3)
                    ready = health.status_code == 200 and health.json().get("status") == "ok"
                except httpx.HTTPError:
                    ready = False
                if ready and consortium.endpoint_of(node.region) == node.url:
                    break
                if time.monotonic() > deadline:
                    raise CliError(f"the {node.name} node did not get ready:\n{node.log_tail()}")
                time.sleep(0.3)


# --------------------------------------------------------------------------- data


def _generate(data_dir: Path, count: int, seed: int) -> dict[int, Path]:
    from node_api.datagen import generate_items, split_count, write_items

    data_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for region, rows in split_count(count).items():
        path = data_dir / f"region-{region}.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            write_items(generate_items(region, rows, seed, invalid_rate=_INVALID_RATE), f)
        # Same seed and count, same bytes: the import checkpoint recognises the file.
        tmp.replace(path)
        files[region] = path
    return files


def _featured_enterprise(files: dict[int, Path]) -> str | None:
    """The USCC with records in the most regions (then with the most records and changes)."""
    regions: dict[str, set[int]] = {}
    records: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    for region, path in files.items():
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f):
                if n >= _SCAN_ROWS:
                    break
                item = json.loads(line)
                record = item.get("record", item)
                uscc = record.get("uscc")
                if not isinstance(uscc, str):
                    continue
                regions.setdefault(uscc, set()).add(region)
                records[uscc] += 1
                if "op" in item:
                    changes[uscc] += 1
    if not regions:
        return None
    return max(regions, key=lambda u: (len(regions[u]), min(changes[u], 3), records[u]))


# --------------------------------------------------------------------------- steps


def _import_all(nodes: list[_Node], files: dict[int, Path]) -> None:
    from node_api.cli.cmd_data import import_with_progress
    from node_api.cli.importer import ImportOptions

    table = Table(title="bulk import (POST /v1/records in chunks; corrections, revocations)")
    for column in ("region", "rows", "accepted", "new", "already there", "corrected",
                   "revoked", "rejected", "this run"):  # fmt: skip
        table.add_column(column, justify="right")
    for node in nodes:
        path = files[node.region]
        summary = import_with_progress(
            ImportOptions(path=path, node_url=node.url, api_key=node.keys["operator"]),
            label=f"import {NAMES[node.region]:<8}",
        )
        c = summary.counts
        table.add_row(
            node.name,
            f"{c['rows']:,}",
            f"{summary.accepted:,}",
            f"{c['created']:,}",
            f"{c['unchanged']:,}",
            f"{c['corrected']:,}",
            f"{c['revoked']:,}",
            f"{c['rejected']:,}",
            f"{summary.rows_this_run:,} rows" if summary.rows_this_run else "nothing new",
        )
    out.print(table)
    rejects = files[BEIJING].with_name(files[BEIJING].name + ".rejects.csv")
    if rejects.is_file():
        lines = rejects.read_text(encoding="utf-8").splitlines()[1:4]
        if lines:
            out.print(f"rejected rows are listed with row, field and reason, e.g. {rejects}:")
            for line in lines:
                out.print(f"  {line}")


def _anchor_all(nodes: list[_Node], anchor: Any) -> None:
    table = Table(title="anchoring (POST /v1/anchor: seal pending versions, one tx per batch)")
    for column in ("region", "anchored now", "versions", "gas", "batches on chain"):
        table.add_column(column, justify="right")
    for node in nodes:
        with node.http() as http:
            body = _json(http.post("/v1/anchor"), f"anchoring at {node.name}")
        batches = body.get("anchored") or []
        seqs = [b["seq"] for b in batches]
        table.add_row(
            node.name,
            (f"seq {seqs[0]}-{seqs[-1]}" if len(seqs) > 1 else f"seq {seqs[0]}")
            if seqs
            else "nothing pending",
            f"{sum(b['size'] for b in batches):,}",
            f"{sum(b.get('gas_used') or 0 for b in batches):,}",
            str(anchor.next_seq(node.region)),
        )
    out.print(table)


def _report_row(title: str, report: dict[str, Any]) -> list[str]:
    from node_api.cli.cmd_records import OUTCOMES

    counts = report.get("counts") or {}
    endorsed = report.get("endorsed")
    return [title, *(f"{counts.get(o, 0):,}" for o in OUTCOMES), str(endorsed or 0)]


def _report_table(title: str) -> Table:
    from node_api.cli.cmd_records import OUTCOMES

    table = Table(title=title)
    table.add_column("")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    table.add_column("endorsed", justify="right")
    return table


def _exchange(nodes: dict[int, _Node], anchor: Any) -> None:
    from node_api.cli.cmd_records import post_package

    beijing = nodes[BEIJING]
    last = anchor.next_seq(BEIJING) - 1
    if last < 0:
        out.print("Beijing has no anchored batch yet")
        return
    table = _report_table("Beijing's package imported, verified against the chain, endorsed")
    for importer in (nodes[TIANJIN], nodes[HEBEI]):
        pending = [
            seq
            for seq in range(last + 1)
            if importer.region not in anchor.endorsers_of(BEIJING, seq)
        ]
        if not pending:
            out.print(f"{importer.name}: all {last + 1} Beijing batches already endorsed; skipped")
            continue
        with beijing.http(purpose="exchange") as http:
            response = http.get("/v1/exchange/export", params={"from_seq": pending[0]})
        if response.status_code != 200:
            raise CliError(f"Beijing export: HTTP {response.status_code}: {response.text[:300]}")
        report = post_package(
            importer.url, importer.keys["operator"], response.content, endorse=True, store=True
        )
        table.add_row(*_report_row(f"{importer.name} (seq {pending[0]}-{last})", report))
    if table.row_count:
        out.print(table)
    for seq in range(max(0, last - 4), last + 1):
        endorsers = anchor.endorsers_of(BEIJING, seq)
        out.print(f"Beijing batch {seq}: endorsed on chain by {sorted(endorsers) or 'nobody yet'}")


def _tamper(package: bytes) -> tuple[bytes, str]:
    """Change one disclosed record in a package: a penalty's amount, else an issuer name."""
    lines = package.split(b"\n")
    body = [i for i, line in enumerate(lines) if line.strip()][:-1]  # the last is the trailer
    chosen = body[0]
    for i in body:
        if b'"administrative_penalty"' in lines[i] and b'"amount_fen":0' not in lines[i]:
            chosen = i
            break
    disclosure = json.loads(lines[chosen])
    record = disclosure["record"]
    if "amount_fen" in record["data"]:
        record["data"]["amount_fen"] = record["data"]["amount_fen"] // 10
        what = f"fine of {record['record_id']} cut to a tenth"
    else:
        record["issued_by"] += "（改）"
        what = f"issuer of {record['record_id']} changed"
    lines[chosen] = json.dumps(disclosure, ensure_ascii=False, separators=(",", ":")).encode()
    return b"\n".join(lines), what


def _tamper_check(nodes: dict[int, _Node], anchor: Any) -> None:
    from node_api.cli.cmd_records import post_package

    last = anchor.next_seq(BEIJING) - 1
    if last < 0:
        return
    with nodes[BEIJING].http(purpose="exchange") as http:
        response = http.get("/v1/exchange/export", params={"from_seq": last, "to_seq": last})
    if response.status_code != 200:
        raise CliError(f"Beijing export: HTTP {response.status_code}: {response.text[:300]}")
    package, what = _tamper(response.content)
    out.print(f"tampering with Beijing's batch {last} in transit: {what}")
    hebei = nodes[HEBEI]
    report = post_package(hebei.url, hebei.keys["operator"], package, endorse=False, store=False)
    table = _report_table("the tampered package, verified by Hebei")
    table.add_row(*_report_row(f"{hebei.name}", report))
    out.print(table)
    for problem in (report.get("problems") or [])[:2]:
        out.print(f"  package problem: {problem}")
    for item in report.get("items") or []:
        if item.get("outcome") == "tampered":
            out.print(
                f"  tampered: line {item.get('line')}, batch {item.get('seq')} leaf "
                f"{item.get('index')}: failed step {item.get('failed_step')} "
                f"({item.get('step_name')}): {item.get('reason')}"
            )
            break


def _integrity_check(nodes: dict[int, _Node]) -> None:
    tianjin = nodes[TIANJIN]
    with tianjin.http() as http:
        report = _json(
            http.post("/v1/integrity/check", json={"region": HEBEI}),
            "Tianjin's integrity check of Hebei",
        )
    table = _report_table("Tianjin checks Hebei (package pulled from Hebei's endpoint on chain)")
    table.add_row(*_report_row(tianjin.name, report))
    out.print(table)


def _history(nodes: dict[int, _Node], uscc: str | None) -> list[dict[str, Any]]:
    from node_api.cli.cmd_records import print_history

    if uscc is None:
        out.print("no enterprise to show")
        return []
    beijing = nodes[BEIJING]
    with beijing.http("auditor", purpose="demo: cross-region audit of one enterprise") as http:
        body = _json(
            http.get(f"/v1/entities/{uscc}/history", params={"federated": "true"}),
            "federated history",
        )
    print_history(body, limit=30)
    return list(body.get("timeline") or [])


def _third_party(
    timeline: list[dict[str, Any]], rpc_url: str, deployment_file: Path, receipts_dir: Path
) -> None:
    from node_api.cli.cmd_verify import check_against_chain, verdict_exit_code

    wanted: dict[str, dict[str, Any]] = {}
    for item in timeline:
        status = (item.get("verdict") or {}).get("status")
        if item.get("receipt") and status in ("valid", "superseded", "revoked"):
            wanted.setdefault(status, item)
    if not wanted:
        out.print("no anchored receipt to verify")
        return
    receipts_dir.mkdir(parents=True, exist_ok=True)
    out.print(
        "A platform or bank holding only a receipt checks it against the chain, "
        "with no node involved:"
    )
    for _, item in sorted(wanted.items()):
        path = receipts_dir / f"{item['record_key'][:16]}-v{item['version']}.json"
        path.write_text(json.dumps(item["receipt"], indent=2) + "\n", encoding="utf-8")
        verdict = check_against_chain(item["receipt"], rpc_url, deployment_file)
        code = verdict_exit_code(verdict.status.value)
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        out.print(
            f"  credit-ledger verify {shown}  →  {verdict.status.value}"
            f" (exit {int(code)}): {item.get('record_type')} {item.get('record_id')}"
            f" v{item.get('version')}"
        )


def _summary(
    nodes: list[_Node], chain: RunningChain, deployment_file: Path, uscc: str | None
) -> None:
    table = Table(title="the consortium is running")
    for column in ("region", "node URL", "operator key", "verifier key", "auditor key"):
        table.add_column(column, no_wrap=True)
    for node in nodes:
        table.add_row(
            node.name, node.url, node.keys["operator"], node.keys["verifier"], node.keys["auditor"]
        )
    out.print(table)
    beijing = nodes[0]
    out.print(f"chain: {chain.kind} at {chain.rpc_url}; deployment: {deployment_file}")
    out.print("try:")
    out.print(f"  curl -s {beijing.url}/v1/health")
    if uscc:
        out.print(
            f"  .venv/bin/credit-ledger history {uscc} --federated "
            f"--node {beijing.url} --api-key {beijing.keys['auditor']}"
        )
        out.print(
            f"  .venv/bin/credit-ledger status {uscc} --node {beijing.url} "
            f"--api-key {beijing.keys['verifier']}"
        )
    out.print(
        f"  .venv/bin/credit-ledger integrity check {HEBEI} --node {nodes[1].url} "
        f"--api-key {nodes[1].keys['operator']}"
    )


# --------------------------------------------------------------------------- main


@contextmanager
def _running_nodes(nodes: list[_Node], demo_dir: Path) -> Iterator[None]:
    try:
        yield
    finally:
        alive = [n for n in nodes if n.process is not None and n.process.poll() is None]
        if alive:
            with err.status("stopping the nodes..."):
                for node in alive:
                    assert node.process is not None
                    node.process.terminate()
                for node in alive:
                    assert node.process is not None
                    try:
                        node.process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        node.process.kill()
                        node.process.wait()
        (demo_dir / "nodes.json").unlink(missing_ok=True)


def run_demo(options: DemoOptions) -> None:
    """Run the demo (see the module docstring); returns when done (``once``) or on Ctrl-C."""
    from eth_account import Account

    from ledger.chain import ChainClient

    started = time.monotonic()
    paths = LocalPaths(options.local_dir or default_local_dir())
    demo_dir = paths.local_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    out.print(
        Panel.fit(
            "credit-ledger: Beijing, Tianjin and Hebei share credit records on a permissioned "
            "Ethereum ledger.\nOnly salted commitments go on chain; records stay with their "
            "region and are disclosed to members.",
            title="three-region demo",
        )
    )
    _stop_leftovers(demo_dir)
    for port in options.node_ports:
        if not _port_free(port):
            raise CliError(
                f"port {port} is in use (another demo running?); stop it or pass --node-ports"
            )

    t = _step("1. local chain and contracts")
    chain = start_chain(paths, options.chain, options.chain_port)
    if chain.started_here:
        out.print(f"started {chain.kind} at {chain.rpc_url} (state in {paths.chain_dir})")
    else:
        out.print(f"reusing the running {chain.kind} at {chain.rpc_url}")
    nodes: list[_Node] = []
    try:
        deployment, reused = ensure_deployment(paths, chain.rpc_url, log=out.print)
        out.print(
            f"{'reused' if reused else 'deployed'} Consortium {deployment.consortium} and "
            f"CreditAnchor {deployment.anchor} (chain id {deployment.chain_id}); "
            "founding regions 110000, 120000, 130000, threshold 2"
        )
        _demo_state(demo_dir, deployment)
        keys = _api_keys(demo_dir)
        client = ChainClient(chain.rpc_url, None, chain_id=deployment.chain_id)
        consortium = deployment.consortium_client(client)
        anchor = deployment.anchor_client(client)
        _done(t)

        t = _step("2. three regional nodes")
        nodes = [
            _Node(code, f"http://127.0.0.1:{port}", keys[code], demo_dir / f"node-{code}")
            for (code, _), port in zip(FOUNDING_REGIONS, options.node_ports, strict=True)
        ]
        with _running_nodes(nodes, demo_dir):
            for node in nodes:
                _start_node(node, chain, paths.deployment_file)
            (demo_dir / "nodes.json").write_text(
                json.dumps([n.process.pid for n in nodes if n.process])
            )
            _wait_ready(nodes, consortium)
            for node in nodes:
                signer = Account.from_key(signer_key(node.region)).address
                out.print(f"{node.name}: {node.url}, SQLite in {node.directory}, signer {signer}")
            _done(t)
            by_region = {n.region: n for n in nodes}
            _demo_steps(options, demo_dir, nodes, by_region, anchor, chain, paths)
            out.print(f"[bold]demo complete in {time.monotonic() - started:.0f} s[/bold]")
            if options.once:
                return
            out.print("running; Ctrl-C stops the nodes and the chain (all state is kept)")
            _wait_for_interrupt(nodes)
    finally:
        if chain.started_here:
            stop_started(paths, chain)
            out.print("stopped the chain (its state is kept for the next run)")


def _demo_steps(
    options: DemoOptions,
    demo_dir: Path,
    nodes: list[_Node],
    by_region: dict[int, _Node],
    anchor: Any,
    chain: RunningChain,
    paths: LocalPaths,
) -> None:
    t = _step(f"3. synthetic data: {options.count:,} rows over three regions (seed {options.seed})")
    files = _generate(demo_dir / "data", options.count, options.seed)
    for region, path in files.items():
        size = path.stat().st_size
        out.print(f"{NAMES[region]:<8} {path} ({size / 1e6:.1f} MB)")
    _done(t)

    t = _step("4. bulk import into each region's node")
    _import_all(nodes, files)
    _done(t)

    t = _step("5. anchoring on chain")
    _anchor_all(nodes, anchor)
    _done(t)

    t = _step("6. exchange: Tianjin and Hebei verify Beijing's package and endorse its batches")
    _exchange(by_region, anchor)
    _done(t)

    t = _step("7. a tampered package is caught")
    _tamper_check(by_region, anchor)
    _done(t)

    t = _step("8. integrity check through the endpoints registered on chain")
    _integrity_check(by_region)
    _done(t)

    t = _step("9. an auditor traces one enterprise across the three regions")
    uscc = _featured_enterprise(files)
    timeline = _history(by_region, uscc)
    _done(t)

    t = _step("10. third-party verification of receipts (chain only)")
    _third_party(timeline, chain.rpc_url, paths.deployment_file, demo_dir / "receipts")
    _done(t)

    _summary(nodes, chain, paths.deployment_file, uscc)


def _wait_for_interrupt(nodes: list[_Node]) -> None:
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    # Installed explicitly: a demo started in the background of a script inherits SIGINT
    # ignored, and Ctrl-C, kill -INT, kill -TERM and a closed terminal should all stop it.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _stop) for signum in handled}
    try:
        while not stop["now"]:
            for node in nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise CliError(f"the {node.name} node exited:\n{node.log_tail()}")
            time.sleep(0.3)
        out.print("\nstopping")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
