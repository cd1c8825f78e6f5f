"""The committed contract artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json

import pytest

from ledger.chain import compile as build


@pytest.fixture(scope="module")
def rebuilt() -> dict[str, dict[str, object]]:
    return build.compile_contracts()


def test_committed_artifacts_match_a_fresh_compile(rebuilt: dict[str, dict[str, object]]) -> None:
    for name in build.ARTIFACT_NAMES:
        committed = build.load_artifact(name)
        fresh = json.loads(json.dumps(rebuilt[name]))
        assert committed["sourceHashes"] == fresh["sourceHashes"], f"{name}: sources changed"
        assert committed == fresh, f"{name}: run python -m ledger.chain.compile and commit"


def test_artifacts_pin_compiler_and_paris(rebuilt: dict[str, dict[str, object]]) -> None:
    for name in build.ARTIFACT_NAMES:
        artifact = build.load_artifact(name)
        assert artifact["compiler"]["version"].startswith(build.PINNED_SOLC + "+commit.")
        assert artifact["settings"] == {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "paris",
        }
        assert artifact["deployedBytecode"].startswith("0x6080")


def test_bytecode_has_no_cancun_opcodes() -> None:
    # PUSH data can contain any byte, so walk the opcodes instead of searching bytes.
    forbidden = {
        0x5C: "TLOAD",
        0x5D: "TSTORE",
        0x5E: "MCOPY",
        0x49: "BLOBHASH",
        0x4A: "BLOBBASEFEE",
    }
    for name in build.ARTIFACT_NAMES:
        code = bytes.fromhex(build.load_artifact(name)["deployedBytecode"][2:])
        # The CBOR metadata trailer is data, not code: its length is in the last two bytes.
        code = code[: len(code) - 2 - int.from_bytes(code[-2:], "big")]
        i = 0
        while i < len(code):
            op = code[i]
            assert op not in forbidden, f"{name}: {forbidden[op]} at {i}"
            i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)


def test_shim_reports_the_pinned_version() -> None:
    import subprocess

    solc = build.resolve_solc()
    out = subprocess.run(
        [str(solc), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Version: {build.PINNED_SOLC}+commit." in out


def test_solc_binary_override_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.errors import CompileError

    monkeypatch.setenv("SOLC_BINARY", "/nonexistent/solc")
    with pytest.raises(CompileError, match="SOLC_BINARY"):
        build.resolve_solc()
