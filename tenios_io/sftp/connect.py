"""Connecting to the customer's SFTP drop: the URL, authentication, host keys, reconnection.

This module is where paramiko and socket errors become tenios-archive errors, once:

- the host key is unknown or has changed → :class:`~tenios_io.exceptions.HostKeyError`
  (terminal; the message shows the fingerprint the server offered and the ``ssh-keyscan`` /
  ``ssh-keygen -R`` lines that fix it);
- the login is refused, or the key file cannot be used → :class:`ConfigError` naming the
  variable (``TENIOS_SFTP_KEY_FILE`` / ``TENIOS_SFTP_PASSWORD``);
- the server cannot be reached, or the connection drops or stalls →
  :class:`SourceUnavailable` (transient), raised by :meth:`SftpConnection.run` after it has
  reconnected a bounded number of times.

Host keys are always checked against ``TENIOS_SFTP_KNOWN_HOSTS`` (OpenSSH format, hashed
entries and ``[host]:port`` entries included) with paramiko's ``RejectPolicy``: nothing is
ever added to known_hosts automatically.  The password is kept as a ``SecretStr`` until the
moment it is handed to paramiko, so it appears in no repr, log line or error message.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import paramiko
from pydantic import SecretStr

from tenios_io.config import ENV_PREFIX, Settings
from tenios_io.exceptions import ConfigError, HostKeyError, SourceUnavailable
from tenios_io.files import KEY_FILE_LIMIT, TEXT_FILE_LIMIT, FileTooLarge, read_capped

__all__ = [
    "SftpConnection",
    "SftpTarget",
    "connect_sftp",
    "connection_lost",
    "parse_sftp_url",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

SSH_PORT = 22
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the TCP connect, the SSH banner, authentication and each SFTP reply."""
DEFAULT_KEEPALIVE = 30.0
"""Seconds between SSH keep-alive packets, so idle NAT/firewall state is not dropped."""
DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_DELAY = 1.0

_URL_VAR = f"{ENV_PREFIX}SFTP_URL"
_KEY_VAR = f"{ENV_PREFIX}SFTP_KEY_FILE"
_PASSWORD_VAR = f"{ENV_PREFIX}SFTP_PASSWORD"
_KNOWN_HOSTS_VAR = f"{ENV_PREFIX}SFTP_KNOWN_HOSTS"

# What a failing SFTP call or connect raises when the link is the problem.  OSError
# covers socket errors; paramiko's SFTP status errors are OSErrors too, which is why
# connection_lost() looks at the channel before calling one of them a lost connection.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    paramiko.SSHException,
    paramiko.SFTPError,
)


# -- where to connect -----------------------------------------------------------------------


@dataclass(frozen=True)
class SftpTarget:
    """Where the drop is: ``sftp://user@host:port/path`` taken apart (path percent-decoded).

    ``path`` is absolute (``/srv/drop``) unless the URL used the ``/~/`` form for a
    directory relative to the login directory (``.`` is the login directory itself).
    """

    user: str
    host: str
    port: int = SSH_PORT
    path: str = "."

    @property
    def host_key_name(self) -> str:
        """The name known_hosts files this host under: ``host``, or ``[host]:port``."""
        return self.host if self.port == SSH_PORT else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp://{self.user}@{host}:{self.port}{'' if self.path == '.' else self.path}"


def parse_sftp_url(url: str) -> SftpTarget:
    """Take ``sftp://user@host:port/drop/dir`` apart; ConfigError (TENIOS_SFTP_URL) if bad.

    The port defaults to 22, the path is percent-decoded (``%20`` → space, UTF-8), and
    ``/~/dir`` means ``dir`` below the login directory.  A password in the URL is refused
    (without echoing it): it belongs in TENIOS_SFTP_PASSWORD.
    """
    parts = urlsplit(url)
    if parts.scheme != "sftp" or not parts.hostname or not parts.username:
        raise ConfigError(
            f"{_URL_VAR} must look like sftp://user@host:port/drop/dir", variable=_URL_VAR
        )
    if parts.password is not None:
        raise ConfigError(
            f"{_URL_VAR} must not contain a password: set {_PASSWORD_VAR} instead",
            variable=_URL_VAR,
        )
    try:
        port = parts.port or SSH_PORT
        user = unquote(parts.username, errors="strict")
        path = unquote(parts.path, errors="strict")
    except ValueError as exc:
        raise ConfigError(f"{_URL_VAR}: {exc}", variable=_URL_VAR) from None
    if path in ("", "/~", "/~/"):
        path = "."
    elif path.startswith("/~/"):
        path = path[3:]
    if path not in ("/", "."):
        path = path.rstrip("/")
    return SftpTarget(user=user, host=parts.hostname, port=port, path=path)


# -- host keys ------------------------------------------------------------------------------


def _keyscan_line(target: SftpTarget, known_hosts: Path) -> str:
    return f"ssh-keyscan -p {target.port} {target.host} >> {shlex.quote(str(known_hosts))}"


def _describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def unknown_host_key_message(target: SftpTarget, known_hosts: Path, offered: paramiko.PKey) -> str:
    """What HostKeyError says when known_hosts has no entry for the server."""
    return (
        f"SFTP host key of {target.host_key_name} is not known: {known_hosts} has no entry "
        f"for it ({_KNOWN_HOSTS_VAR}). The server offered {_describe_key(offered)}. Check that "
        "fingerprint with the server's operator, then add the host key:\n"
        f"    {_keyscan_line(target, known_hosts)}"
    )


def changed_host_key_message(
    target: SftpTarget, known_hosts: Path, expected: paramiko.PKey, offered: paramiko.PKey
) -> str:
    """What HostKeyError says when the server's key differs from the known_hosts entry."""
    name = shlex.quote(target.host_key_name)
    return (
        f"SFTP host key of {target.host_key_name} has CHANGED: {known_hosts} expects "
        f"{_describe_key(expected)}, the server offered {_describe_key(offered)}. This may be a "
        "man-in-the-middle attack, or the server was reinstalled: confirm the new fingerprint "
        "with the server's operator before trusting it. Then remove the old line and add the "
        "new key:\n"
        f"    ssh-keygen -R {name} -f {shlex.quote(str(known_hosts))}\n"
        f"    {_keyscan_line(target, known_hosts)}"
    )


class _RejectRemembering(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, remembering the key it rejected for the error message."""

    def __init__(self) -> None:
        self.rejected: paramiko.PKey | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        self.rejected = key
        super().missing_host_key(client, hostname, key)


# -- opening one session --------------------------------------------------------------------


_ENCRYPTED = (
    f"is encrypted with a passphrase: set {ENV_PREFIX}SFTP_KEY_PASSPHRASE, or use a key without one"
)
_WRONG_PASSPHRASE = f"cannot be decrypted with {ENV_PREFIX}SFTP_KEY_PASSPHRASE (wrong passphrase?)"


def _load_key(path: Path, passphrase: SecretStr | None = None) -> paramiko.PKey:
    """The private key in ``path`` (decrypted with ``passphrase`` if given), or
    ConfigError(TENIOS_SFTP_KEY_FILE) saying why not — never quoting the passphrase."""
    path = path.expanduser()
    secret = passphrase.get_secret_value() if passphrase is not None else None
    try:
        # Positional: paramiko 3 calls it passphrase, paramiko 4+ password; bytes, as
        # cryptography wants them (from_path hands it on as is).
        password = secret.encode() if secret else None
        read_capped(path, KEY_FILE_LIMIT)  # paramiko reads any file whole (/dev/zero: OOM)
        return paramiko.PKey.from_path(path, password)  # type: ignore[arg-type]
    except FileTooLarge as exc:
        problem = f"is not a private key: larger than {exc.limit:,} bytes"
    except FileNotFoundError:
        problem = "does not exist"
    except PermissionError:
        problem = "cannot be read (permission denied)"
    except paramiko.PasswordRequiredException:
        problem = _ENCRYPTED
    except TypeError as exc:  # cryptography: "Key is password-protected, but ..."
        problem = _ENCRYPTED if "password" in str(exc).lower() else f"is not usable ({exc})"
    except (paramiko.SSHException, ValueError, OSError) as exc:
        problem = (
            _WRONG_PASSPHRASE
            if secret
            else f"is not a usable private key ({type(exc).__name__}: {exc})"
        )
    raise ConfigError(f"{_KEY_VAR}: {path} {problem}", variable=_KEY_VAR)


def _open_session(
    target: SftpTarget,
    *,
    pkey: paramiko.PKey | None,
    password: SecretStr | None,
    known_hosts: Path,
    timeout: float,
    keepalive: float,
) -> paramiko.SFTPClient:
    """One SSH connection + SFTP channel, host key checked; connect errors propagate raw."""
    client = paramiko.SSHClient()
    host_keys = client.get_host_keys()
    try:
        read_capped(known_hosts, TEXT_FILE_LIMIT)  # paramiko reads lines of any length
        host_keys.load(str(known_hosts))
    except FileNotFoundError:
        pass  # no entry at all: the connect below reports the key as unknown
    except FileTooLarge as exc:
        raise ConfigError(f"{_KNOWN_HOSTS_VAR}: {exc}", variable=_KNOWN_HOSTS_VAR) from None
    except OSError as exc:
        raise ConfigError(
            f"{_KNOWN_HOSTS_VAR}: cannot read {known_hosts} ({exc})", variable=_KNOWN_HOSTS_VAR
        ) from None
    policy = _RejectRemembering()
    client.set_missing_host_key_policy(policy)
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            pkey=pkey,
            password=password.get_secret_value() if password is not None else None,
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
        transport = client.get_transport()
        assert transport is not None  # connect() succeeded
        transport.set_keepalive(max(1, round(keepalive)))
        sftp = client.open_sftp()
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            changed_host_key_message(target, known_hosts, exc.expected_key, exc.key)
        ) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        methods = " and ".join(
            what
            for what, used in (("key", pkey is not None), ("password", password is not None))
            if used
        )
        variable = _KEY_VAR if pkey is not None else _PASSWORD_VAR
        raise ConfigError(
            f"SFTP login as {target.user!r} to {target.host}:{target.port} was refused "
            f"(tried: {methods}): check {_KEY_VAR} / {_PASSWORD_VAR} and the server's "
            "authorized keys.",
            variable=variable,
        ) from exc
    except paramiko.SSHException as exc:
        client.close()
        if policy.rejected is not None:
            raise HostKeyError(
                unknown_host_key_message(target, known_hosts, policy.rejected)
            ) from exc
        raise
    except BaseException:
        client.close()
        raise
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(timeout)  # a stalled server raises instead of hanging forever
    logger.info("SFTP connected to %s", target)
    return sftp


def _close_session(sftp: paramiko.SFTPClient) -> None:
    """Close an SFTP session and the SSH connection under it; never raises."""
    channel = sftp.get_channel()
    transport = channel.get_transport() if channel is not None else None
    try:
        sftp.close()
    except CONNECTION_ERRORS:
        pass
    if transport is not None:
        transport.close()


def connection_lost(exc: BaseException, sftp: paramiko.SFTPClient) -> bool:
    """Whether ``exc`` from an SFTP call means the session is gone (so: reconnect).

    SFTP status errors (no such file, permission denied, failure) arrive as OSError with
    the session intact; only an error with a closed channel or transport, a time-out, or a
    protocol-level error means the connection is lost.
    """
    if isinstance(exc, TimeoutError | paramiko.SSHException | paramiko.SFTPError):
        return True  # after a time-out the request/response stream is out of step
    channel = sftp.get_channel()
    if channel is None or channel.closed or channel.eof_received:
        return True
    transport = channel.get_transport()
    return transport is None or not transport.is_active()


# -- the reconnecting connection ------------------------------------------------------------


class SftpConnection:
    """An SFTP session that reconnects lazily after the connection dropped.

    Every SFTP operation goes through :meth:`run`, which hands it the current
    ``paramiko.SFTPClient``.  When the operation fails because the connection is gone
    (see :func:`connection_lost`), the session is discarded and the whole operation is
    tried again on a new one, at most ``attempts`` times in all (with a short, doubling
    pause between attempts); then :class:`SourceUnavailable` is raised, chained to the
    last paramiko/socket error.  Other errors (a missing file, say) propagate unchanged.
    Operations must therefore be safe to repeat from the start — the ones in
    :mod:`tenios_io.sftp.drop` are.

    Build one with :func:`connect_sftp`, or wrap an existing client with :meth:`attach`
    (no reconnection).  Safe to share between threads.
    """

    def __init__(
        self,
        open_session: Callable[[], paramiko.SFTPClient],
        *,
        target: SftpTarget | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        owns_sessions: bool = True,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._open_session = open_session
        self.target = target
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._owns_sessions = owns_sessions
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def attach(cls, sftp: paramiko.SFTPClient) -> SftpConnection:
        """Wrap a client someone else opened (and closes): errors translated, no reconnection."""
        return cls(lambda: sftp, attempts=1, owns_sessions=False)

    def __repr__(self) -> str:
        where = self.target if self.target is not None else "attached client"
        state = "closed" if self._closed else ("open" if self._sftp is not None else "idle")
        return f"<SftpConnection {where} {state}>"

    @property
    def describe(self) -> str:
        """Where this connection goes, for messages."""
        return str(self.target) if self.target is not None else "the SFTP server"

    def connect(self) -> None:
        """Open the session now (instead of on first use), raising what opening raises."""
        self.run(lambda sftp: None, what="connect")

    def run(self, operation: Callable[[paramiko.SFTPClient], T], *, what: str) -> T:
        """Run ``operation(sftp)``, reconnecting after a lost connection (bounded)."""
        last: BaseException | None = None
        for attempt in range(1, self._attempts + 1):
            if attempt > 1 and self._retry_delay > 0:
                time.sleep(self._retry_delay * 2 ** (attempt - 2))
            try:
                sftp = self._session()
            except CONNECTION_ERRORS as exc:
                last = exc
                logger.warning(
                    "SFTP %s: cannot connect to %s (attempt %d/%d): %s",
                    what,
                    self.describe,
                    attempt,
                    self._attempts,
                    _error_text(exc),
                )
                continue
            try:
                return operation(sftp)
            except CONNECTION_ERRORS as exc:
                if not connection_lost(exc, sftp):
                    raise
                last = exc
                self._discard(sftp)
                logger.warning(
                    "SFTP %s: connection to %s lost (attempt %d/%d): %s",
                    what,
                    self.describe,
                    attempt,
                    self._attempts,
                    _error_text(exc),
                )
        assert last is not None
        raise SourceUnavailable(
            f"SFTP {what}: no usable connection to {self.describe} after {self._attempts} "
            f"attempt(s) (last error: {_error_text(last)}); try again later"
        ) from last

    def _session(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._closed:
                raise ValueError(f"{self!r} is closed")
            if self._sftp is None:
                self._sftp = self._open_session()
            return self._sftp

    def _discard(self, sftp: paramiko.SFTPClient) -> None:
        with self._lock:
            if self._sftp is sftp:  # another thread may have reconnected already
                self._sftp = None
        if self._owns_sessions:
            _close_session(sftp)

    def close(self) -> None:
        """Close the session (if this connection opened it); safe to call twice."""
        with self._lock:
            sftp, self._sftp, self._closed = self._sftp, None, True
        if sftp is not None and self._owns_sessions:
            _close_session(sftp)
            logger.debug("SFTP connection to %s closed", self.describe)

    def __enter__(self) -> SftpConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        # its own text is "[Errno None] Unable to connect ..."; the causes are in .errors
        causes = "; ".join(
            (err.strerror if isinstance(err, OSError) and err.strerror else str(err))
            for err in exc.errors.values()
        )
        return f"cannot connect: {causes}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect_sftp(
    settings: Settings,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay: float = DEFAULT_RETRY_DELAY,
    timeout: float = DEFAULT_TIMEOUT,
    keepalive: float = DEFAULT_KEEPALIVE,
) -> SftpConnection:
    """Connect to the drop in ``settings.sftp_url`` and return the (reconnecting) connection.

    Connects at once, so a wrong host key (HostKeyError), refused login or unusable key
    file (ConfigError) shows at start-up; an unreachable server raises SourceUnavailable
    after ``attempts`` tries.
    """
    if not settings.sftp_url:
        raise ConfigError(
            f"{_URL_VAR} is not set: give the drop as sftp://user@host:port/drop/dir",
            variable=_URL_VAR,
        )
    target = parse_sftp_url(settings.sftp_url)
    pkey = (
        _load_key(settings.sftp_key_file, settings.sftp_key_passphrase)
        if settings.sftp_key_file is not None
        else None
    )
    password = settings.sftp_password
    if password is not None and not password.get_secret_value():
        password = None
    if pkey is None and password is None:
        raise ConfigError(
            f"SFTP needs credentials: set {_KEY_VAR} (a private key file) or {_PASSWORD_VAR}",
            variable=_KEY_VAR,
        )
    opener = partial(
        _open_session,
        target,
        pkey=pkey,
        password=password,
        known_hosts=settings.sftp_known_hosts.expanduser(),
        timeout=timeout,
        keepalive=keepalive,
    )
    connection = SftpConnection(opener, target=target, attempts=attempts, retry_delay=retry_delay)
    connection.connect()
    return connection
