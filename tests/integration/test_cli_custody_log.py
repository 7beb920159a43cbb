"""The custody log's commands through the real entry point: keygen, verify-bucket, prove,
check-proof (exit codes 0 ok, 1 problems found, 2 usage)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tenios_io import signing
from tenios_io.config import load_settings
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]


def test_keygen_writes_a_private_key_and_prints_only_the_verifier(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "custody.key"
    made = cli("audit", "keygen", "--name", "archive.example.com", "--output", str(path))
    assert made.exit_code == 0, made.output
    signer = signing.read_signer(path)
    verifier = str(signer.verifier)
    assert made.stdout.splitlines()[0] == verifier
    assert signing.parse_verifier(verifier).name == "archive.example.com"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip().rsplit("+", 1)[-1]
    assert secret not in made.output

    again = cli("audit", "keygen", "--name", "other", "--output", str(path))
    assert again.exit_code == 2 and "--output" in again.stderr and "overwrite" in again.stderr
    assert str(signing.read_signer(path).verifier) == verifier  # untouched
    bad = cli("audit", "keygen", "--name", "two words", "--output", str(tmp_path / "k2"))
    assert bad.exit_code == 2 and "--name" in bad.stderr and not (tmp_path / "k2").exists()


def test_custody_key_file_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE", raising=False)
    assert load_settings().custody_key_file is None
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(tmp_path / "k"))
    assert load_settings().custody_key_file == tmp_path / "k"
