"""connect_sftp / SftpConnection against a real SFTP server: host keys, auth, reconnection."""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import subprocess
import traceback
from pathlib import Path

import paramiko
import pytest
from pydantic import SecretStr

from tenios_io.exceptions import ConfigError, HostKeyError, SourceUnavailable, is_transient
from tenios_io.sftp import SftpDrop, connect_sftp
from tests.fixtures.sshd import SftpServer


def fingerprint(public_key: str) -> str:
    kind, blob = public_key.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(blob)).fingerprint


def listing(connection: object) -> list[str]:
    return connection.run(lambda sftp: sftp.listdir("/"), what="list")  # type: ignore[attr-defined]


def test_key_auth_with_keepalive(sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    intervals: list[int] = []
    original = paramiko.Transport.set_keepalive

    def spy(self: paramiko.Transport, interval: int) -> None:
        intervals.append(interval)
        original(self, interval)

    monkeypatch.setattr(paramiko.Transport, "set_keepalive", spy)
    with connect_sftp(sftp_server.settings(), keepalive=15) as connection:
        assert "tmp" in listing(connection)
    assert intervals == [15]


# -- host keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("known_hosts_content", [None, "", "otherhost ssh-ed25519 AAAA\n"])
def test_unknown_host_key(sftp_server: SftpServer, known_hosts_content: str | None) -> None:
    known_hosts = sftp_server.workdir / "empty_known_hosts"
    if known_hosts_content is not None:
        known_hosts.write_text(known_hosts_content)
    settings = sftp_server.settings(sftp_known_hosts=known_hosts)

    with pytest.raises(HostKeyError) as caught:
        connect_sftp(settings, retry_delay=0)

    message = str(caught.value)
    assert "host key" in message and "not known" in message
    assert fingerprint(sftp_server.keys.host_public) in message
    keyscan = f"ssh-keyscan -p {sftp_server.port} 127.0.0.1 >> {known_hosts}"
    assert keyscan in message
    assert not is_transient(caught.value)
    if shutil.which("ssh-keyscan"):  # the advice works as given
        subprocess.run(keyscan, shell=True, check=True, capture_output=True)
        with connect_sftp(settings) as connection:
            assert listing(connection)


def test_changed_host_key(sftp_server: SftpServer) -> None:
    known_hosts = sftp_server.workdir / "stale_known_hosts"
    known_hosts.write_text(sftp_server.known_hosts_line(sftp_server.keys.other_host_public))
    settings = sftp_server.settings(sftp_known_hosts=known_hosts)

    with pytest.raises(HostKeyError) as caught:
        connect_sftp(settings, retry_delay=0)

    message = str(caught.value)
    assert "host key" in message and "CHANGED" in message and "man-in-the-middle" in message
    assert fingerprint(sftp_server.keys.host_public) in message  # seen
    assert fingerprint(sftp_server.keys.other_host_public) in message  # expected
    remove = f"ssh-keygen -R '[127.0.0.1]:{sftp_server.port}' -f {known_hosts}"
    keyscan = f"ssh-keyscan -p {sftp_server.port} 127.0.0.1 >> {known_hosts}"
    assert remove in message and keyscan in message
    if shutil.which("ssh-keygen") and shutil.which("ssh-keyscan"):
        subprocess.run(remove, shell=True, check=True, capture_output=True)
        subprocess.run(keyscan, shell=True, check=True, capture_output=True)
        with connect_sftp(settings) as connection:
            assert listing(connection)


def test_hashed_known_hosts_entry(sftp_server: SftpServer) -> None:
    known_hosts = sftp_server.workdir / "hashed_known_hosts"
    hashed = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{sftp_server.port}")
    known_hosts.write_text(f"{hashed} {sftp_server.keys.host_public}\n")
    with connect_sftp(sftp_server.settings(sftp_known_hosts=known_hosts)) as connection:
        assert listing(connection)


def test_known_hosts_path_expands_tilde(
    sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sftp_server.known_hosts_line())
    monkeypatch.setenv("HOME", str(home))
    settings = sftp_server.settings(sftp_known_hosts=Path("~/.ssh/known_hosts"))
    with connect_sftp(settings) as connection:
        assert listing(connection)


# -- authentication -------------------------------------------------------------------------


def test_a_key_the_server_does_not_know_is_a_config_error(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    from tests.fixtures.sshd import make_keys

    stranger = make_keys(tmp_path / "stranger").client_key
    with pytest.raises(ConfigError, match="was refused") as caught:
        connect_sftp(sftp_server.settings(sftp_key_file=stranger), retry_delay=0)
    assert caught.value.variable == "TENIOS_SFTP_KEY_FILE"


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_password_auth_works_and_the_password_never_shows(
    asyncssh_sftp_server: SftpServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = asyncssh_sftp_server
    assert server.password
    caplog.set_level(logging.DEBUG)
    settings = server.settings(sftp_key_file=None, sftp_password=SecretStr(server.password))
    with connect_sftp(settings) as connection:
        (server.drop_dir / "8101fcb3-3843-4db3-9829-f7ab586625fe.wav").write_bytes(b"RIFF")
        drop = SftpDrop.from_settings(connection, settings)
        assert len(drop.sweep().ready) == 1
        shown = repr(connection) + repr(drop) + repr(settings) + str(connection.target)

    wrong = server.settings(sftp_key_file=None, sftp_password=SecretStr("wrong-" + server.password))
    with pytest.raises(ConfigError, match="was refused") as caught:
        connect_sftp(wrong, retry_delay=0)
    assert caught.value.variable == "TENIOS_SFTP_PASSWORD"

    assert "Authentication (password) successful" in caplog.text  # paramiko did log at DEBUG
    for text in (caplog.text, shown, _all_text(caught.value)):
        assert server.password not in text


def test_password_is_offered_to_openssh_and_never_shows(
    sftp_server: SftpServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The default server: OpenSSH where installed.  OpenSSH checks passwords against the
    # machine's accounts (which tests leave alone), so here the password is refused; the
    # asyncssh test above shows a password login succeeding.
    caplog.set_level(logging.DEBUG)
    password = "wrong-Tr0ub4dor&3-secret"
    settings = sftp_server.settings(sftp_key_file=None, sftp_password=SecretStr(password))
    with pytest.raises(ConfigError, match=r"tried: password") as caught:
        connect_sftp(settings, retry_delay=0)
    assert password not in _all_text(caught.value)
    assert password not in caplog.text
    if sftp_server.kind == "openssh":
        log = (sftp_server.workdir / "sshd.log").read_text()
        assert "Failed password" in log and password not in log


PASSPHRASE = "key-Passphr4se-never-shown"


def test_an_encrypted_key_logs_in_with_its_passphrase_which_never_shows(
    sftp_server: SftpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncssh

    caplog.set_level(logging.DEBUG)
    encrypted = tmp_path / "id_ed25519_encrypted"  # the authorised key, under a passphrase
    asyncssh.read_private_key(str(sftp_server.key_file)).write_private_key(
        str(encrypted), passphrase=PASSPHRASE
    )
    settings = sftp_server.settings(
        sftp_key_file=encrypted, sftp_key_passphrase=SecretStr(PASSPHRASE)
    )
    with connect_sftp(settings, retry_delay=0) as connection:
        drop = SftpDrop.from_settings(connection, settings)
        assert drop.sweep().ready == []
        shown = repr(connection) + repr(drop) + repr(settings)

    wrong = sftp_server.settings(
        sftp_key_file=encrypted, sftp_key_passphrase=SecretStr("wrong-" + PASSPHRASE)
    )
    with pytest.raises(ConfigError, match="TENIOS_SFTP_KEY_PASSPHRASE") as caught:
        connect_sftp(wrong, retry_delay=0)
    assert caught.value.variable == "TENIOS_SFTP_KEY_FILE"
    missing = sftp_server.settings(sftp_key_file=encrypted)
    with pytest.raises(ConfigError, match="set TENIOS_SFTP_KEY_PASSPHRASE") as unset:
        connect_sftp(missing, retry_delay=0)
    for text in (caplog.text, shown, _all_text(caught.value), _all_text(unset.value)):
        assert PASSPHRASE not in text


# -- unreachable, stalled, dropped ----------------------------------------------------------


def test_server_down_then_back(sftp_server: SftpServer) -> None:
    connection = connect_sftp(sftp_server.settings(), attempts=2, retry_delay=0)
    with connection:
        sftp_server.stop()
        with pytest.raises(SourceUnavailable, match="after 2 attempt") as caught:
            listing(connection)
        assert is_transient(caught.value)
        sftp_server.start()  # same port
        assert listing(connection)  # reconnected lazily

    sftp_server.stop()
    with pytest.raises(SourceUnavailable, match="refused"):
        connect_sftp(sftp_server.settings(), attempts=1)


def test_dropped_connection_between_operations_is_reconnected(sftp_server: SftpServer) -> None:
    with connect_sftp(sftp_server.settings(), retry_delay=0) as connection:
        first = connection.run(lambda sftp: sftp, what="peek")
        sftp_server.drop_connections()
        assert listing(connection)
        assert connection.run(lambda sftp: sftp, what="peek") is not first


def test_a_server_that_never_answers_times_out(sftp_server: SftpServer) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = sftp_server.settings(sftp_url=f"sftp://{sftp_server.user}@127.0.0.1:{port}/")
        with pytest.raises(SourceUnavailable, match="after 1 attempt"):
            connect_sftp(settings, attempts=1, timeout=0.5)
