"""Compile the Solidity contracts with the pinned solc and manage the committed artifacts.

The artifacts under ``ledger/artifacts/`` are package data: a third party who installs the
library gets the ABIs and bytecode without node or solc. ``python -m ledger.chain.compile``
rewrites them; ``--check`` fails when they no longer match the sources.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.errors import CompileError

__all__ = [
    "PINNED_SOLC",
    "COMPILER_SETTINGS",
    "ARTIFACT_NAMES",
    "resolve_solc",
    "collect_sources",
    "compile_contracts",
    "write_artifacts",
    "load_artifact",
    "artifact_hash",
]

PINNED_SOLC = "0.8.28"

# One pinned configuration: "paris" keeps the bytecode free of Cancun opcodes (MCOPY,
# TSTORE), so it runs unchanged on ganache 7.9, Besu and GoQuorum (DESIGN §4).
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "paris",
}

# Contracts deployed by the project; their artifacts are committed as package data.
ARTIFACT_NAMES = ("Consortium", "CreditAnchor")

_REPO_ROOT = Path(__file__).resolve().parents[2]
_CONTRACTS_DIR = _REPO_ROOT / "contracts"
_NODE_MODULES = _REPO_ROOT / "node_modules"
_SHIM = _REPO_ROOT / "scripts" / "solc-shim.js"
_ARTIFACT_DIR = _REPO_ROOT / "ledger" / "artifacts"
_IMPORT_RE = re.compile(r'^\s*import\s+(?:[^;]*?\bfrom\s+)?"([^"]+)"\s*;', re.MULTILINE)


def resolve_solc() -> Path:
    """Find the compiler: ``$SOLC_BINARY``, then a native solc of the pinned version
    installed by py-solc-x, then the solc-js shim in ``scripts/`` (DESIGN §8)."""
    explicit = os.environ.get("SOLC_BINARY")
    if explicit:
        path = Path(explicit).resolve()
        if not path.is_file():
            raise CompileError(f"SOLC_BINARY={explicit} does not exist")
        return path
    try:
        from packaging.version import Version
        from solcx.install import get_executable, get_installed_solc_versions

        if Version(PINNED_SOLC) in get_installed_solc_versions():
            return Path(get_executable(PINNED_SOLC))
    except Exception:  # noqa: BLE001 - no native solc is a normal case here
        pass
    if _SHIM.is_file() and (_NODE_MODULES / "solc").is_dir() and shutil.which("node"):
        return _SHIM.resolve()
    raise CompileError(
        "no Solidity compiler: set SOLC_BINARY, install solc "
        f"{PINNED_SOLC} with py-solc-x, or run `npm ci` so scripts/solc-shim.js can use solc-js"
    )


def _resolve_import(importer: str, target: str) -> tuple[str, Path]:
    """Map an import to (source unit name, file on disk)."""
    if target.startswith("./") or target.startswith("../"):
        unit = os.path.normpath(os.path.join(os.path.dirname(importer), target))
    else:
        unit = target
    if unit.startswith("@"):
        path = _NODE_MODULES / unit
    else:
        path = _REPO_ROOT / unit
    if not path.is_file():
        raise CompileError(f"{importer}: cannot resolve import {target!r} ({path})")
    return unit, path


def collect_sources(contracts_dir: Path = _CONTRACTS_DIR) -> dict[str, str]:
    """Every source unit the contracts need, keyed by source unit name, with content.

    Sources are handed to the compiler inline, so the result does not depend on the
    compiler's own file system access (native solc and the shim behave the same).
    """
    pending = [
        (f"contracts/{p.relative_to(contracts_dir).as_posix()}", p)
        for p in sorted(contracts_dir.rglob("*.sol"))
    ]
    sources: dict[str, str] = {}
    while pending:
        unit, path = pending.pop()
        if unit in sources:
            continue
        text = path.read_text(encoding="utf-8")
        sources[unit] = text
        for target in _IMPORT_RE.findall(text):
            pending.append(_resolve_import(unit, target))
    return dict(sorted(sources.items()))


def compile_contracts(contracts_dir: Path = _CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Compile the contracts and return one artifact per deployable contract."""
    import solcx

    sources = collect_sources(contracts_dir)
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            **COMPILER_SETTINGS,
            "outputSelection": {
                "*": {
                    "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]
                }
            },
        },
    }
    solc = resolve_solc()
    try:
        output = solcx.compile_standard(
            standard_input, solc_binary=str(solc), allow_paths=str(_REPO_ROOT)
        )
    except Exception as e:  # solcx raises its own SolcError with the compiler's messages
        raise CompileError(f"solc failed: {e}") from e
    errors = [m for m in output.get("errors", []) if m.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(m.get("formattedMessage", str(m)) for m in errors))

    source_hashes = {
        unit: hashlib.sha256(text.encode()).hexdigest() for unit, text in sources.items()
    }
    artifacts: dict[str, dict[str, Any]] = {}
    for unit, contracts in output["contracts"].items():
        if not unit.startswith("contracts/"):
            continue
        for name, compiled in contracts.items():
            if name not in ARTIFACT_NAMES:
                continue
            metadata = json.loads(compiled["metadata"])
            artifacts[name] = {
                "contractName": name,
                "sourceName": unit,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "compiler": {"version": metadata["compiler"]["version"]},
                "settings": COMPILER_SETTINGS,
                "sourceHashes": source_hashes,
            }
    missing = set(ARTIFACT_NAMES) - artifacts.keys()
    if missing:
        raise CompileError(f"contracts not found in contracts/: {sorted(missing)}")
    return artifacts


def _render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], dest: Path = _ARTIFACT_DIR) -> list[Path]:
    """Write artifacts as stable, sorted JSON so that a rebuild is byte-identical."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = dest / f"{name}.json"
        path.write_text(_render(artifact), encoding="utf-8")
        written.append(path)
    return written


def load_artifact(name: str) -> dict[str, Any]:
    """Read a committed artifact (package data), without needing solc or node."""
    try:
        text = (
            resources.files("ledger")
            .joinpath("artifacts")
            .joinpath(f"{name}.json")
            .read_text("utf-8")
        )
    except FileNotFoundError as e:
        raise CompileError(
            f"no compiled artifact for {name}; run python -m ledger.chain.compile"
        ) from e
    artifact: dict[str, Any] = json.loads(text)
    return artifact


def artifact_hash(name: str) -> str:
    """SHA-256 (hex) of a committed artifact's deployed bytecode, for deployment files."""
    code = load_artifact(name)["deployedBytecode"]
    return hashlib.sha256(bytes.fromhex(code.removeprefix("0x"))).hexdigest()


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed artifacts differ from a rebuild"
    )
    args = parser.parse_args(argv)
    try:
        artifacts = compile_contracts()
    except CompileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.check:
        stale = [
            name
            for name, artifact in artifacts.items()
            if not (_ARTIFACT_DIR / f"{name}.json").is_file()
            or (_ARTIFACT_DIR / f"{name}.json").read_text("utf-8") != _render(artifact)
        ]
        if stale:
            print(
                f"stale artifacts: {', '.join(stale)}; run python -m ledger.chain.compile",
                file=sys.stderr,
            )
            return 1
        print(f"artifacts up to date ({', '.join(sorted(artifacts))})")
        return 0
    for path in write_artifacts(artifacts):
        print(f"wrote {path.relative_to(_REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
