"""Benchmark: how fast the command line answers (issue 27, "fast answers").

    .venv/bin/python bench/bench_cli.py [--recordings N] [--repeat R]

1. `--help` of every command (the Click tree walked from the app) and a few usage
   errors: CPU seconds (user + system) of the real console script, the least of
   R runs, against the floor: an interpreter that only imports Typer (what any
   Typer CLI pays).  Budget: 0.3 s CPU each.
2. Simple ledger reads on a SQLite ledger of N recordings (default 100,000, made with
   `ledger import`): `ledger show`, `ledger list`, `ledger stats`, `db current`.
   Budget: 0.8 s CPU each.

CPU time, not wall time: the machine may be shared.  Exits 1 when a figure is over
its budget.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HELP_BUDGET = 0.3
READ_BUDGET = 0.8
SCRIPT = Path(sys.executable).with_name("tenios-archive")


def cpu_of(args: list[str], env: dict[str, str], repeat: int) -> float:
    """The least CPU seconds (user + system) of ``args`` run ``repeat`` times."""
    best = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, used)
    return best


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as argument paths."""
    import typer
    from typer.core import TyperGroup

    from tenios_io.cli import app

    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = [()]

    def walk(path: tuple[str, ...], command: object) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            for name in sorted(command.commands):
                walk((*path, name), command.commands[name])

    for name in sorted(root.lazy):  # type: ignore[attr-defined]
        walk((name,), root.load(name))  # type: ignore[attr-defined]
    return paths


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "COLUMNS"))}
    over: list[str] = []

    floor = cpu_of([sys.executable, "-c", "import typer"], env, args.repeat)
    print(f"floor: an interpreter importing Typer: {floor:.3f} s CPU")
    helps = {
        " ".join(p) or "(root)": cpu_of([str(SCRIPT), *p, "--help"], env, args.repeat)
        for p in command_paths()
    }
    errors = {
        "run nightly --concurrency 0": ["run", "nightly", "--concurrency", "0"],
        "ledger list --state nonsense": ["ledger", "list", "--state", "nonsense"],
        "audit verify --sample x": ["audit", "verify", "--sample", "x"],
    }
    for name, argv in errors.items():
        helps[f"usage error: {name}"] = cpu_of([str(SCRIPT), *argv], env, args.repeat)
    worst = max(helps, key=helps.__getitem__)
    print(
        f"--help of {len(helps) - len(errors)} commands and {len(errors)} usage errors: "
        f"median {sorted(helps.values())[len(helps) // 2]:.3f} s, worst {helps[worst]:.3f} s "
        f"({worst}), {helps[worst] / floor:.2f}x the floor; budget {HELP_BUDGET} s"
    )
    over += [f"{k}: {v:.3f} s" for k, v in helps.items() if v > HELP_BUDGET]

    with tempfile.TemporaryDirectory() as tmp:
        ledger_env = {**env, "TENIOS_DATABASE_URL": f"sqlite:///{tmp}/ledger.db"}
        ids = [str(uuid.uuid4()) for _ in range(args.recordings)]
        (Path(tmp) / "ids.txt").write_text("\n".join(ids) + "\n")
        for setup in (["db", "upgrade"], ["ledger", "import", f"{tmp}/ids.txt"]):
            subprocess.run([str(SCRIPT), *setup], env=ledger_env, check=True, capture_output=True)
        reads = {
            "ledger show UUID": ["ledger", "show", ids[len(ids) // 2]],
            "ledger list": ["ledger", "list"],
            "ledger list --json": ["ledger", "list", "--json"],
            "ledger stats": ["ledger", "stats"],
            "db current": ["db", "current"],
        }
        for name, argv in reads.items():
            used = cpu_of([str(SCRIPT), *argv], ledger_env, args.repeat)
            print(
                f"{name} on {args.recordings:,} recordings: {used:.3f} s CPU "
                f"({used / floor:.2f}x the floor); budget {READ_BUDGET} s"
            )
            if used > READ_BUDGET:
                over.append(f"{name}: {used:.3f} s")
    if over:
        print("over budget: " + "; ".join(over))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
