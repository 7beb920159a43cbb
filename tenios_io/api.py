"""The TENIOS record-call API client: start, stop and retrieve recordings.

:class:`TeniosClient` receives its ``httpx.Client`` (build one with
:func:`make_http_client`; tests pass ``httpx.MockTransport``).  Every failure
leaves here as one of the API errors of :mod:`tenios_io.exceptions`, translated
in one place, :func:`_translate`:

    BAD_CREDENTIALS on 400/401/403, any 401/403
                               → AccessDenied (check TENIOS_ACCESS_KEY)      terminal
    400                        → InvalidRequest (``fields`` from the body)   terminal
    301, 302, 303, 307, 308    → WrongApiUrl naming the Location             terminal
    404 whose body is not JSON (an HTML page, text) or says the endpoint/method is
    unknown                    → WrongApiUrl (check TENIOS_API_URL)          terminal
    404 on stop / retrieve     → RecordingNotFound (an empty body too)       terminal*
    404 on start, other 4xx    → InvalidRequest                              terminal

TENIOS's error bodies for a bad key and an unknown endpoint are not documented
beyond the two examples in TENIOS-RECORDING-API.md, so errors are classified by
what the body says as well as by status.  An empty 404 stays "not found" (a
recording not ready yet may well be answered that way); a run that sees nothing
but 404s is stopped by the run-wide policy instead.
    408, 425, 429, 5xx         → ApiUnavailable (``retry_after``)            transient
    no connection (refused, DNS, TLS handshake, connect timeout)
                               → ApiUnreachable naming the API's host       transient
                                 (run-wide once retries are spent: run/stop.py)
    read/protocol error        → ApiUnavailable                              transient
    body shorter than declared → TruncatedBody                               transient

Transient errors are retried inside the client, a bounded number of times, with
exponential backoff and full jitter; ``Retry-After`` is honoured (capped by
``backoff_max``).  ``start`` is not idempotent — a retried start whose first
answer was lost would create a second recording — so it is retried only when
the request certainly was not carried out (connect errors, 429, 503).

The access key travels only in request bodies, which are never logged; it is not
in any message, repr or exception chain this module produces.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from tenios_io import __version__
from tenios_io.exceptions import (
    AccessDenied,
    ApiError,
    ApiUnavailable,
    ApiUnreachable,
    InvalidRequest,
    RecordingNotFound,
    TruncatedBody,
    WrongApiUrl,
)
from tenios_io.recording.source import Fetched, FetchRequest, Sink

logger = logging.getLogger("tenios_io.api")

CHUNK_SIZE = 1024 * 1024
"""Bytes handed to the sink per write while streaming a recording."""
_ERROR_BODY_LIMIT = 64 * 1024
"""Only this much of an error body is parsed."""
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_NOT_PROCESSED_STATUS = frozenset({429, 503})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_BAD_CREDENTIALS = "BAD_CREDENTIALS"
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: No connection to the API at all (httpx raises ConnectError for a refused connection,
#: a name that does not resolve and a failed TLS handshake alike).
_UNREACHABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
_RAW_BODY = {"Accept-Encoding": "identity"}
"""A recording is fetched as is: its length is checked against Content-Length."""

T = TypeVar("T")


@dataclass(frozen=True)
class RetrieveResult:
    """What :meth:`TeniosClient.retrieve_recording` wrote into the sink."""

    size: int
    content_type: str | None
    declared_size: int | None = None
    """Content-Length, when the answer had one (None: a close-delimited body)."""


def make_http_client(
    base_url: str,
    *,
    pool_size: int = 16,
    connect_timeout: float = 10,
    read_timeout: float = 60,
) -> httpx.Client:
    """An ``httpx.Client`` for the TENIOS API: explicit timeouts, a keep-alive pool of
    ``pool_size`` connections (size it to the number of concurrent workers).

    Proxy variables of the environment are ignored (``trust_env=False``): only
    :mod:`tenios_io.config` reads the environment.
    """
    limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
    transport = httpx.HTTPTransport(
        verify=_tls_context(),
        limits=limits,
        trust_env=False,
        # httpcore writes a request's headers and body separately; with Nagle on, the
        # body may wait for the server's delayed ACK (up to 40 ms). curl sets it too.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.Client(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        headers={"User-Agent": f"tenios-archive/{__version__}"},
        trust_env=False,
        follow_redirects=False,
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~150 ms per httpx.Client; one verifying context
    # (thread-safe) serves them all.
    return httpx.create_ssl_context()


class TeniosClient:
    """Client of the TENIOS record-call API (``record-call/start|stop|retrieve``).

    Args:
        http: the HTTP client, with the API's base URL (see :func:`make_http_client`).
        access_key: the TENIOS API access key (sent in request bodies only).
        max_attempts: tries per call, the first included, for transient errors.
        backoff_base, backoff_max: the n-th retry waits a random 0..min(max, base·2ⁿ⁻¹)
            seconds, or Retry-After (capped by ``backoff_max``) when the server sent one.
        sleep: how to wait between attempts (tests pass a recorder).
        before_request: called before every HTTP request, retries included
            (the pipeline passes its rate limiter).
        rng: the jitter's random source (tests pass a seeded one).
    """

    def __init__(
        self,
        http: httpx.Client,
        access_key: str,
        *,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        before_request: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not access_key:
            raise ValueError("access_key must not be empty")
        self._http = http
        self._access_key = access_key
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._before_request = before_request
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"TeniosClient(base_url={str(self._http.base_url)!r}, access_key='***')"

    def start_recording(
        self,
        call_uuid: str,
        record_caller: bool | None = None,
        record_callee: bool | None = None,
    ) -> str:
        """Start recording the call; returns the new ``recording_uuid``.

        ``record_caller`` / ``record_callee`` are sent only when given (TENIOS's own
        examples never send them; both default to true at TENIOS).
        """
        payload: dict[str, Any] = {"access_key": self._access_key, "call_uuid": call_uuid}
        for name, value in (("record_caller", record_caller), ("record_callee", record_callee)):
            if value is not None:
                payload[name] = value

        def attempt() -> str:
            answer = self._post_json("start", payload, None)
            recording_uuid = answer.get("recording_uuid")
            if not isinstance(recording_uuid, str) or not recording_uuid:
                raise ApiUnavailable("TENIOS answered start without a recording_uuid")
            return recording_uuid

        recording_uuid = self._with_retries("start", None, attempt, retry_if=_not_processed)
        logger.debug("start: call %s -> recording %s", call_uuid, recording_uuid)
        return recording_uuid

    def stop_recording(self, recording_uuid: str, call_uuid: str | None = None) -> None:
        """Stop the recording; raises unless TENIOS answers ``success`` true."""
        payload = {"access_key": self._access_key, "recording_uuid": recording_uuid}
        if call_uuid is not None:
            payload["call_uuid"] = call_uuid

        def attempt() -> None:
            answer = self._post_json("stop", payload, recording_uuid)
            success = answer.get("success")
            # Documented as the string "true"; a boolean is accepted too.
            if success is True or (isinstance(success, str) and success.lower() == "true"):
                return
            raise InvalidRequest(
                f"TENIOS did not confirm stopping recording {recording_uuid} (success={success!r})",
                recording_uuid=recording_uuid,
            )

        self._with_retries("stop", recording_uuid, attempt)
        logger.debug("stop: recording %s stopped", recording_uuid)

    def retrieve_recording(self, recording_uuid: str, sink: Sink) -> RetrieveResult:
        """Stream the recording into ``sink``, byte-exact.

        The body goes to the sink in chunks of :data:`CHUNK_SIZE`, never whole in
        memory.  Each attempt starts with ``sink.seek(0); sink.truncate()``, so
        what a failed attempt wrote never survives.
        """
        payload = {"access_key": self._access_key, "recording_uuid": recording_uuid}

        def attempt() -> RetrieveResult:
            sink.seek(0)
            sink.truncate()
            progress: tuple[int, int | None] | None = None  # set once the body is flowing
            try:
                with self._http.stream(
                    "POST", "record-call/retrieve", json=payload, headers=_RAW_BODY
                ) as response:
                    if response.status_code != 200:
                        _read_error_body(response)
                        raise _translate(response, "retrieve", recording_uuid, self._access_key)
                    declared = _content_length(response)
                    size = 0
                    progress = (0, declared)
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        sink.write(chunk)
                        size += len(chunk)
                    received = _received(response, size)
                    content_type = response.headers.get("content-type")
            except httpx.HTTPError as exc:
                if progress is not None:
                    progress = (_received(response, size), progress[1])
                raise _translate(
                    exc, "retrieve", recording_uuid, self._access_key, progress
                ) from exc
            if declared is not None and received < declared:
                raise _truncated(recording_uuid, received, declared)
            return RetrieveResult(size=size, content_type=content_type, declared_size=declared)

        result = self._with_retries("retrieve", recording_uuid, attempt)
        logger.debug("retrieve: recording %s, %d bytes", recording_uuid, result.size)
        return result

    def exists(self, recording_uuid: str) -> bool:
        """Whether TENIOS has the recording: a retrieve whose body is not read (the
        answer's status is all that is asked; the connection is closed at once).  False
        on a 404 that names the recording; the API's other errors raise as usual.  The
        API documents no HEAD and no ranges, so this is the cheapest question there is."""
        payload = {"access_key": self._access_key, "recording_uuid": recording_uuid}

        def attempt() -> bool:
            try:
                with self._http.stream(
                    "POST", "record-call/retrieve", json=payload, headers=_RAW_BODY
                ) as response:
                    if response.status_code == 200:
                        return True
                    _read_error_body(response)
                    error = _translate(response, "retrieve", recording_uuid, self._access_key)
            except httpx.HTTPError as exc:
                raise _translate(exc, "retrieve", recording_uuid, self._access_key) from exc
            if isinstance(error, RecordingNotFound):
                return False
            raise error

        return self._with_retries("retrieve", recording_uuid, attempt)

    def check_reachable(self) -> None:
        """Whether TENIOS_API_URL can be connected to at all (the run's preflight): one
        ``HEAD`` of the base URL, carrying no access key and no recording.  Any HTTP
        answer counts (the API documents no such endpoint); ApiUnreachable when no
        connection could be made (refused, DNS, TLS), so a run stops before any work.
        Other network errors (a slow answer) are left to the run's own requests."""
        try:
            self._http.head("")
        except _UNREACHABLE_ERRORS as exc:
            raise _translate(exc, "preflight", None, self._access_key) from exc
        except httpx.HTTPError as exc:
            logger.debug("preflight HEAD of the API: %s (not a connect error)", type(exc).__name__)

    # -- internals -------------------------------------------------------------------------

    def _post_json(
        self, operation: str, payload: dict[str, Any], recording_uuid: str | None
    ) -> dict[str, Any]:
        try:
            response = self._http.post(f"record-call/{operation}", json=payload)
        except httpx.HTTPError as exc:
            raise _translate(exc, operation, recording_uuid, self._access_key) from exc
        if response.status_code != 200:
            raise _translate(response, operation, recording_uuid, self._access_key)
        try:
            answer = response.json()
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            raise ApiUnavailable(
                f"TENIOS answered {operation} with a body that is not a JSON object",
                recording_uuid=recording_uuid,
                status_code=response.status_code,
            )
        return answer

    def _with_retries(
        self,
        operation: str,
        recording_uuid: str | None,
        attempt: Callable[[], T],
        *,
        retry_if: Callable[[ApiUnavailable], bool] = lambda exc: True,
    ) -> T:
        for number in range(1, self.max_attempts + 1):
            if self._before_request is not None:
                self._before_request()
            try:
                return attempt()
            except ApiUnavailable as exc:
                if number >= self.max_attempts or not retry_if(exc):
                    logger.warning(
                        "%s %s: %s; giving up after %d attempt(s)",
                        operation,
                        recording_uuid or "-",
                        _cause(exc),
                        number,
                    )
                    raise
                delay = self._delay(number, exc.retry_after)
                logger.warning(
                    "%s %s: %s; retry %d/%d in %.2fs",
                    operation,
                    recording_uuid or "-",
                    _cause(exc),
                    number,
                    self.max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.backoff_max, retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (number - 1))
        return self._rng.uniform(0, ceiling)


class ApiSource:
    """The TENIOS API as a :class:`~tenios_io.recording.source.RecordingSource`: it can
    always try."""

    name = "api"

    def __init__(self, client: TeniosClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"ApiSource({self._client!r})"

    def can_fetch(self, request: FetchRequest) -> bool:
        return True

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        result = self._client.retrieve_recording(request.recording_uuid, sink)
        return Fetched(
            source="api",
            size=result.size,
            content_type=result.content_type,
            declared_size=result.declared_size,
        )

    def after_archived(self, request: FetchRequest, fetched: Fetched) -> str | None:
        return None


# -- error translation: the one place httpx meets our exception tree -----------------------


def _translate(
    failure: httpx.Response | httpx.HTTPError,
    operation: str,
    recording_uuid: str | None,
    secret: str,
    progress: tuple[int, int | None] | None = None,
) -> ApiError:
    """Map an HTTP answer or an httpx exception to our error (see the module docstring).

    ``progress``: for an error while reading a body, (bytes received, Content-Length),
    to tell a truncated body from other network errors.
    """
    about = f" for recording {recording_uuid}" if recording_uuid else ""
    if isinstance(failure, httpx.HTTPError):
        reason = _scrub(str(failure) or type(failure).__name__, secret)
        if progress is not None:
            got, declared = progress
            if declared is not None and got < declared:
                return _truncated(recording_uuid, got, declared, reason)
        if isinstance(failure, _UNREACHABLE_ERRORS):
            url = _origin(failure)
            return ApiUnreachable(
                f"TENIOS unreachable at {url} ({operation}{about}): "
                f"{type(failure).__name__}: {reason}; check TENIOS_API_URL and the network",
                url=url,
                reason=f"{type(failure).__name__}: {reason}",
                recording_uuid=recording_uuid,
            )
        return ApiUnavailable(
            f"TENIOS {operation}{about}: {type(failure).__name__}: {reason}; try again later",
            recording_uuid=recording_uuid,
        )

    status = failure.status_code
    code, message, fields = _error_details(failure, secret)
    said = f" ({code}: {message})" if code or message else ""
    if status in (401, 403) or (status == 400 and code.upper() == _BAD_CREDENTIALS):
        return AccessDenied(
            f"TENIOS refused the access key ({status}{' ' + code if code else ''}): check "
            "TENIOS_ACCESS_KEY (and TENIOS's IP allow-list for this host)",
            recording_uuid=recording_uuid,
        )
    if status in _REDIRECT_STATUS:
        location = _scrub(failure.headers.get("location", "(no Location)"), secret)
        return WrongApiUrl(
            f"TENIOS answered the {operation} request with a redirect ({status}) to "
            f"{location}: set TENIOS_API_URL to the API's real address (redirects are not "
            "followed, the access key travels in the request body)",
            location=location,
            recording_uuid=recording_uuid,
        )
    if status == 404 and _unknown_endpoint(failure, code, message):
        return WrongApiUrl(
            f"TENIOS answered 404 for {failure.request.url}{said or ' (not a JSON answer)'}: "
            "no such endpoint; check TENIOS_API_URL",
            recording_uuid=recording_uuid,
        )
    if status == 400:
        named = f"; invalid field(s): {', '.join(fields)}" if fields else ""
        return InvalidRequest(
            f"TENIOS rejected the {operation} request{about} (400){said}{named}",
            fields=fields,
            recording_uuid=recording_uuid,
        )
    if status == 404 and recording_uuid is not None:
        return RecordingNotFound(
            f"recording {recording_uuid} not found at TENIOS (404): unknown, or not ready yet",
            recording_uuid=recording_uuid,
        )
    if status in _RETRYABLE_STATUS or status >= 500:
        return ApiUnavailable(
            f"TENIOS {operation}{about} answered {status}{said}; try again later",
            recording_uuid=recording_uuid,
            status_code=status,
            retry_after=_retry_after(failure),
        )
    if status == 404:
        return InvalidRequest(
            f"TENIOS answered 404 for {failure.request.url}: no such endpoint; "
            "check TENIOS_API_URL",
            recording_uuid=recording_uuid,
        )
    return InvalidRequest(
        f"TENIOS refused the {operation} request{about} ({status}){said}",
        fields=fields,
        recording_uuid=recording_uuid,
    )


def _truncated(
    recording_uuid: str | None, got: int, declared: int, reason: str | None = None
) -> TruncatedBody:
    about = f" of recording {recording_uuid}" if recording_uuid else ""
    why = f" ({reason})" if reason else ""
    return TruncatedBody(
        f"TENIOS sent {got} of {declared} bytes{about}: the body was cut short{why}; "
        "try again later",
        recording_uuid=recording_uuid,
    )


def _error_details(response: httpx.Response, secret: str) -> tuple[str, str, list[str]]:
    """error_code, error_message and fields from a TENIOS error body, if it has them."""
    try:
        body = json.loads(response.content[:_ERROR_BODY_LIMIT])
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return "", "", []
    if not isinstance(body, dict):
        return "", "", []
    code = body.get("error_code")
    message = body.get("error_message")
    raw_fields = body.get("fields")
    fields = [str(f) for f in raw_fields] if isinstance(raw_fields, list) else []
    return (
        _scrub(str(code), secret) if code else "",
        _scrub(str(message), secret) if message else "",
        [_scrub(f, secret) for f in fields],
    )


def _unknown_endpoint(response: httpx.Response, code: str, message: str) -> bool:
    """Whether a 404 says the endpoint (not the recording) is unknown: its body is not
    JSON at all (a web server's or proxy's page), or its words name an endpoint/method."""
    try:
        content = response.content[:_ERROR_BODY_LIMIT]
    except httpx.ResponseNotRead:
        return False
    if not content.strip():
        return False
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return True
    if not isinstance(body, dict):
        return True
    said = f"{code} {message}".lower()
    return any(word in said for word in ("endpoint", "method", "no route", "unknown path"))


def _read_error_body(response: httpx.Response) -> None:
    """Read an error answer's (small) body; a broken one is left unread and ignored."""
    try:
        response.read()
    except httpx.HTTPError:
        pass


def _received(response: httpx.Response, decoded: int) -> int:
    """Body bytes received as counted against Content-Length (i.e. before any decoding).

    ``decoded`` is what reached the sink; a body httpx had read in advance does not
    count in ``num_bytes_downloaded``, one still in its chunk buffer only there.
    """
    if response.headers.get("content-encoding", "identity").lower() in ("", "identity"):
        return max(decoded, response.num_bytes_downloaded)
    return response.num_bytes_downloaded


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _origin(failure: httpx.HTTPError) -> str:
    """The scheme, host and port the request went to (never its path, query or any
    credentials in the URL)."""
    try:
        url = failure.request.url
    except RuntimeError:  # an error raised outside a request
        return "TENIOS_API_URL"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def _not_processed(exc: ApiUnavailable) -> bool:
    """Whether the server certainly did not carry the request out (safe to repeat a start)."""
    return exc.status_code in _NOT_PROCESSED_STATUS or isinstance(exc.__cause__, _NOT_SENT_ERRORS)


def _cause(exc: ApiUnavailable) -> str:
    """A few words for the log: the status, or what broke (never a message text)."""
    if exc.status_code is not None:
        return f"HTTP {exc.status_code}"
    if isinstance(exc, TruncatedBody):
        return "truncated body"
    return type(exc.__cause__ or exc).__name__


def _scrub(text: str, secret: str) -> str:
    """Never repeat the access key, even if a server or library echoes it."""
    return text.replace(secret, "***") if secret else text


__all__ = ["CHUNK_SIZE", "ApiSource", "RetrieveResult", "TeniosClient", "make_http_client"]
