"""`tenios-archive demo --keep-running` (issue 27): after the demo its servers stay up,
the lines it prints reach them from another process, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ctrl_c_as_from_a_terminal() -> None:
    """In the child before it starts: SIGINT at its default disposition, as a terminal's
    ^C finds it. A test runner started in the background (``nohup … &``) ignores SIGINT,
    its children inherit that, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_demo_keep_running_serves_until_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env["PYTHONPATH"] = str(ROOT)
    demo = subprocess.Popen(
        [sys.executable, "-m", "tenios_io.cli", "demo", "--recordings", "4", "--dir",
         str(tmp_path / "demo"), "--keep-running"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=ctrl_c_as_from_a_terminal,
    )  # fmt: skip
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for line in demo.stdout:  # until the demo says its servers keep running
            lines.append(line.rstrip("\n"))
            if line.startswith("tenios-archive --config") and "verify-chain" in line:
                break
        else:
            raise AssertionError("\n".join(lines))
        exports = next(line for line in lines if line.startswith("export AWS_"))
        child = dict(env)
        child.update(dict(pair.split("=", 1) for pair in shlex.split(exports)[1:]))
        command = shlex.split(lines[-1])
        chained = subprocess.run(
            [sys.executable, "-m", "tenios_io.cli", *command[1:]],
            env=child, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert chained.returncode == 0, chained.stdout + chained.stderr
        assert "custody chain OK" in chained.stdout and "checkpoints OK" in chained.stdout
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, "\n".join(lines) + rest
    assert "stopping the demo's servers" in rest and "Traceback" not in rest
