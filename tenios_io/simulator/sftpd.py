"""The simulator's drop folder served over SFTP (asyncssh, in-process, 127.0.0.1 only).

For the demo: TENIOS delivers recordings to the customer's SFTP server; here the
simulator's drop folder plays that server.  Keys are generated fresh (an ed25519
host key and client key) and a known_hosts file with the ``[127.0.0.1]:PORT``
entry is written, so the archiver checks the host key exactly as in production.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningSftp:
    """How to reach the served drop."""

    host: str
    port: int
    user: str
    root: Path
    key_file: Path
    known_hosts: Path

    @property
    def url(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{self.root}"


def _key(path: Path) -> str:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="tenios-archive simulator")
    key.write_private_key(str(path))
    path.chmod(0o600)
    return str(key.export_public_key().decode().strip())


@contextmanager
def serving_drop(root: Path, keys_dir: Path, *, user: str = "tenios") -> Iterator[RunningSftp]:
    """Serve ``root`` over SFTP on 127.0.0.1 (a free port) until the block ends."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    host_public = _key(keys_dir / "ssh_host_ed25519_key")
    client_public = _key(keys_dir / "id_ed25519")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tenios-sftpd", daemon=True)
    thread.start()

    def call(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(_TIMEOUT)

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[str(keys_dir / "ssh_host_ed25519_key")],
            authorized_client_keys=asyncssh.import_authorized_keys(client_public),
            sftp_factory=True,
            allow_scp=False,
        )

    async def close(server: Any) -> None:
        server.close()
        await server.wait_closed()

    server = call(listen())
    try:
        port = int(server.sockets[0].getsockname()[1])
        known = keys_dir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_public}\n", encoding="utf-8")
        yield RunningSftp("127.0.0.1", port, user, root.resolve(), keys_dir / "id_ed25519", known)
    finally:
        call(close(server))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_TIMEOUT)
        loop.close()
