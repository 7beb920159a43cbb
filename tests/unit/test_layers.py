"""The house's rules hold: packages in layers, no cycles, a pure custody format.

The rules themselves are import-linter contracts in pyproject.toml
(``[tool.importlinter]``); these tests run them, show that they bite, and check the
two promises that matter most at run time in a fresh interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """The contracts of this project's pyproject.toml, over the packages found in ``cwd``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_of_the_house(tmp_path: Path) -> Path:
    for package in ("tenios_io", "flows"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("run/session.py", "import tenios_io.audit.report", "are layered"),
        ("custody/chain.py", "import tenios_io.ledger.tables", "are layered"),
        ("custody/verify.py", "import sqlalchemy", "needs no database"),
        ("audit/report_data.py", "import tenios_io.audit.report", "no import cycle"),
        ("config.py", "import flows.nightly", "never imports the Prefect flows"),
    ],
)
def test_a_breach_is_caught(tmp_path: Path, module: str, line: str, broken: str) -> None:
    house = _copy_of_the_house(tmp_path)
    target = house / "tenios_io" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n")
    result = _lint_imports(house)
    assert result.returncode != 0
    broken_lines = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(broken in ln for ln in broken_lines), result.stdout


def _modules_after(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_the_bucket_only_verifier_imports_no_sqlalchemy() -> None:
    modules = _modules_after("import tenios_io.custody.verify, tenios_io.custody.proof")
    assert "tenios_io.custody.verify" in modules
    assert not {m for m in modules if m.split(".")[0] in ("sqlalchemy", "alembic", "psycopg")}
    assert not {m for m in modules if m.startswith("tenios_io.ledger")}


def test_the_run_path_imports_no_audit() -> None:
    modules = _modules_after("import tenios_io.run.session, tenios_io.run.pipeline")
    assert "tenios_io.run.session" in modules
    assert not {m for m in modules if m.startswith(("tenios_io.audit", "tenios_io.cli"))}
