"""SFTP connection logic without a network: URL parsing, host-key messages, reconnection."""

from __future__ import annotations

import base64
from pathlib import Path

import asyncssh
import paramiko
import pytest

from tenios_io.config import Settings
from tenios_io.exceptions import ConfigError, HostKeyError, SourceUnavailable, is_transient
from tenios_io.sftp import SftpConnection, SftpTarget, connect_sftp, parse_sftp_url
from tenios_io.sftp.connect import changed_host_key_message, unknown_host_key_message

# -- URL ------------------------------------------------------------------------------------


def test_url_with_port_and_path() -> None:
    target = parse_sftp_url("sftp://tenios@sftp.example.com:2222/drop/recordings")
    assert target == SftpTarget(
        user="tenios", host="sftp.example.com", port=2222, path="/drop/recordings"
    )
    assert target.host_key_name == "[sftp.example.com]:2222"


def test_url_port_defaults_to_22() -> None:
    target = parse_sftp_url("sftp://tenios@sftp.example.com/drop/")
    assert (target.port, target.path) == (22, "/drop")
    assert target.host_key_name == "sftp.example.com"


def test_url_path_is_percent_decoded() -> None:
    target = parse_sftp_url("sftp://us%40er@h:22/Ablage%20M%C3%BCller/in")
    assert target.user == "us@er"
    assert target.path == "/Ablage Müller/in"


@pytest.mark.parametrize(
    ("url", "path"),
    [("sftp://u@h", "."), ("sftp://u@h/", "/"), ("sftp://u@h/~/", "."), ("sftp://u@h/~/in", "in")],
)
def test_url_login_relative_and_root(url: str, path: str) -> None:
    assert parse_sftp_url(url).path == path


def test_url_with_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sftp_url("sftp://u:hunter2secret@h:22/drop")
    assert "hunter2secret" not in str(caught.value)
    assert "TENIOS_SFTP_PASSWORD" in str(caught.value)
    assert caught.value.variable == "TENIOS_SFTP_URL"


@pytest.mark.parametrize("url", ["http://u@h/x", "sftp://h/x", "sftp://u@h:notaport/x"])
def test_bad_urls_name_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sftp_url(url)
    assert caught.value.variable == "TENIOS_SFTP_URL"


def test_target_str_for_messages() -> None:
    assert str(parse_sftp_url("sftp://u@h:2022/in")) == "sftp://u@h:2022/in"


# -- host key messages ----------------------------------------------------------------------


def _pkey() -> paramiko.PKey:
    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    kind, blob = public.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


def test_unknown_host_key_message() -> None:
    target = SftpTarget("u", "127.0.0.1", 2222, "/drop")
    offered = _pkey()
    message = unknown_host_key_message(target, Path("/home/x/.ssh/known_hosts"), offered)
    assert "host key" in message
    assert "not known" in message
    assert offered.fingerprint in message and offered.fingerprint.startswith("SHA256:")
    assert "ssh-keyscan -p 2222 127.0.0.1 >> /home/x/.ssh/known_hosts" in message


def test_changed_host_key_message() -> None:
    target = SftpTarget("u", "127.0.0.1", 2222, "/drop")
    expected, offered = _pkey(), _pkey()
    message = changed_host_key_message(target, Path("/k h/known_hosts"), expected, offered)
    assert "host key" in message and "CHANGED" in message
    assert "man-in-the-middle" in message
    assert expected.fingerprint in message and offered.fingerprint in message
    assert "ssh-keygen -R '[127.0.0.1]:2222' -f '/k h/known_hosts'" in message
    assert "ssh-keyscan -p 2222 127.0.0.1 >> '/k h/known_hosts'" in message


def test_host_key_error_is_terminal() -> None:
    assert not is_transient(HostKeyError("x"))


# -- credentials are checked before connecting ---------------------------------------------


def _settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {
        "sftp_url": "sftp://u@127.0.0.1:9/drop",
        "sftp_key_file": None,
        "sftp_password": None,
        "sftp_known_hosts": tmp_path / "known_hosts",
    }
    base.update(values)
    return Settings(**base)


def test_no_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        connect_sftp(_settings(tmp_path, sftp_url=None))
    assert caught.value.variable == "TENIOS_SFTP_URL"


def test_no_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TENIOS_SFTP_KEY_FILE.*TENIOS_SFTP_PASSWORD"):
        connect_sftp(_settings(tmp_path))


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as caught:
        connect_sftp(_settings(tmp_path, sftp_key_file=tmp_path / "nope"))
    assert caught.value.variable == "TENIOS_SFTP_KEY_FILE"


def test_garbage_key_file(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("not a key\n")
    with pytest.raises(ConfigError, match="not a usable private key"):
        connect_sftp(_settings(tmp_path, sftp_key_file=key))


def test_encrypted_key_file_is_refused_clearly(tmp_path: Path) -> None:
    key = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key), passphrase="pp")
    with pytest.raises(ConfigError, match="passphrase"):
        connect_sftp(_settings(tmp_path, sftp_key_file=key))


# -- reconnection (fake sessions) -----------------------------------------------------------


class FakeTransport:
    def __init__(self) -> None:
        self.active = True
        self.closed = False

    def is_active(self) -> bool:
        return self.active

    def close(self) -> None:
        self.closed = True
        self.active = False


class FakeChannel:
    def __init__(self) -> None:
        self.closed = False
        self.eof_received = False
        self.transport = FakeTransport()

    def get_transport(self) -> FakeTransport:
        return self.transport


class FakeSftp:
    def __init__(self) -> None:
        self.channel = FakeChannel()
        self.closed = False

    def get_channel(self) -> FakeChannel:
        return self.channel

    def close(self) -> None:
        self.closed = True

    def drop(self) -> None:
        self.channel.transport.active = False


class Opener:
    """Hands out fresh FakeSftp sessions; can be told to fail the next opens."""

    def __init__(self) -> None:
        self.sessions: list[FakeSftp] = []
        self.refuse = 0

    def __call__(self) -> FakeSftp:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        self.sessions.append(FakeSftp())
        return self.sessions[-1]


def test_run_reconnects_after_a_lost_connection_and_repeats_the_operation() -> None:
    opener = Opener()
    connection = SftpConnection(opener, attempts=3, retry_delay=0)
    calls: list[FakeSftp] = []

    def operation(sftp: FakeSftp) -> str:
        calls.append(sftp)
        if len(calls) == 1:
            sftp.drop()
            raise OSError("Socket is closed")
        return "done"

    assert connection.run(operation, what="test") == "done"  # type: ignore[arg-type]
    assert calls == opener.sessions and len(calls) == 2
    assert opener.sessions[0].channel.transport.closed  # the dead session was closed


def test_run_gives_up_after_the_attempts_with_source_unavailable() -> None:
    opener = Opener()
    connection = SftpConnection(opener, attempts=2, retry_delay=0)

    def always_drops(sftp: FakeSftp) -> None:
        sftp.drop()
        raise EOFError()

    with pytest.raises(SourceUnavailable, match="after 2 attempt") as caught:
        connection.run(always_drops, what="fetch /x")  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, EOFError)
    assert is_transient(caught.value)
    assert len(opener.sessions) == 2


def test_run_counts_refused_connects_as_attempts() -> None:
    opener = Opener()
    opener.refuse = 5
    connection = SftpConnection(opener, attempts=3, retry_delay=0)
    with pytest.raises(SourceUnavailable, match="Connection refused"):
        connection.run(lambda sftp: None, what="sweep")
    assert opener.refuse == 2 and not opener.sessions
    # the server is back: the next operation connects lazily
    opener.refuse = 0
    assert connection.run(lambda sftp: 42, what="sweep") == 42


def test_status_errors_on_a_live_session_are_not_connection_errors() -> None:
    opener = Opener()
    connection = SftpConnection(opener, attempts=3, retry_delay=0)

    def missing(sftp: FakeSftp) -> None:
        raise FileNotFoundError(2, "No such file")

    with pytest.raises(FileNotFoundError):
        connection.run(missing, what="stat")  # type: ignore[arg-type]
    assert len(opener.sessions) == 1  # no reconnect


def test_timeouts_count_as_lost_connections() -> None:
    opener = Opener()
    connection = SftpConnection(opener, attempts=2, retry_delay=0)

    def stalls(sftp: FakeSftp) -> None:
        raise TimeoutError("timed out")

    with pytest.raises(SourceUnavailable):
        connection.run(stalls, what="fetch")  # type: ignore[arg-type]
    assert len(opener.sessions) == 2


def test_attach_does_not_reconnect_or_close_the_callers_client() -> None:
    sftp = FakeSftp()
    connection = SftpConnection.attach(sftp)  # type: ignore[arg-type]

    def drops(session: FakeSftp) -> None:
        session.drop()
        raise OSError("Socket is closed")

    with pytest.raises(SourceUnavailable, match="after 1 attempt"):
        connection.run(drops, what="fetch")  # type: ignore[arg-type]
    connection.close()
    assert not sftp.closed and not sftp.channel.transport.closed


def test_closed_connection_refuses_work() -> None:
    connection = SftpConnection(Opener(), retry_delay=0)
    connection.close()
    with pytest.raises(ValueError, match="closed"):
        connection.run(lambda sftp: None, what="x")
    assert "closed" in repr(connection)
