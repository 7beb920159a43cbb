"""TeniosClient logic against httpx.MockTransport: status mapping, retries, secrecy."""

from __future__ import annotations

import io
import json
import logging
import random
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tenios_io.api import ApiSource, RetrieveResult, TeniosClient, make_http_client
from tenios_io.exceptions import (
    AccessDenied,
    ApiError,
    ApiUnavailable,
    InvalidRequest,
    RecordingNotFound,
    Terminal,
    Transient,
    TruncatedBody,
)
from tenios_io.recording.source import Fetched, FetchRequest

KEY = "KEY-7f3a-SECRET-91c2"
REC = "1f92df20-f643-4105-bdbf-104c98aba611"
CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"
Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport answering from a list of handlers (the last one repeats)."""

    def __init__(self, *answers: Handler | httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.requests]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class MaxJitter(random.Random):
    """uniform(a, b) → b, so backoff delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make_client(script: Script, **options: object) -> tuple[TeniosClient, Sleeps]:
    sleeps = Sleeps()
    http = httpx.Client(base_url="https://api.tenios.test", transport=httpx.MockTransport(script))
    options.setdefault("rng", MaxJitter())
    return TeniosClient(http, KEY, sleep=sleeps, **options), sleeps  # type: ignore[arg-type]


def error(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def audio(data: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=data, headers={"content-type": "application/octet-stream; charset=UTF-8"}
    )


class BrokenStream(httpx.SyncByteStream):
    """Yields some bytes, then fails like a reset connection."""

    def __init__(self, first: bytes, exc: Exception) -> None:
        self.first, self.exc = first, exc

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise self.exc


# -- happy paths ------------------------------------------------------------------------------


def test_start_sends_the_documented_body_and_returns_the_recording_uuid() -> None:
    script = Script(httpx.Response(200, json={"recording_uuid": REC}))
    client, _ = make_client(script)

    assert client.start_recording(CALL, record_caller=False) == REC

    request = script.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/record-call/start"
    assert script.bodies() == [{"access_key": KEY, "call_uuid": CALL, "record_caller": False}]


def test_start_sends_no_optional_field_unless_asked() -> None:
    # TENIOS's own examples send only access_key and call_uuid (issue 11).
    script = Script(httpx.Response(200, json={"recording_uuid": REC}))
    client, _ = make_client(script)
    client.start_recording(CALL)
    assert script.bodies() == [{"access_key": KEY, "call_uuid": CALL}]


@pytest.mark.parametrize("success", ["true", True, "TRUE"])
def test_stop_accepts_success_as_string_or_boolean(success: object) -> None:
    script = Script(httpx.Response(200, json={"success": success}))
    client, _ = make_client(script)

    client.stop_recording(REC, call_uuid=CALL)

    assert script.bodies() == [{"access_key": KEY, "recording_uuid": REC, "call_uuid": CALL}]


@pytest.mark.parametrize("success", ["false", False, None, "yes", 1])
def test_stop_without_a_true_success_is_a_terminal_error(success: object) -> None:
    script = Script(httpx.Response(200, json={"success": success}))
    client, _ = make_client(script)

    with pytest.raises(InvalidRequest) as caught:
        client.stop_recording(REC)

    assert caught.value.recording_uuid == REC
    assert len(script.requests) == 1


def test_stop_omits_call_uuid_when_not_given() -> None:
    script = Script(httpx.Response(200, json={"success": "true"}))
    client, _ = make_client(script)
    client.stop_recording(REC)
    assert script.bodies() == [{"access_key": KEY, "recording_uuid": REC}]


def test_retrieve_streams_the_body_into_the_sink() -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: more than one chunk
    script = Script(audio(data))
    client, _ = make_client(script)
    sink = io.BytesIO()

    result = client.retrieve_recording(REC, sink)

    assert result == RetrieveResult(
        size=len(data),
        content_type="application/octet-stream; charset=UTF-8",
        declared_size=len(data),
    )
    assert sink.getvalue() == data
    assert script.bodies() == [{"access_key": KEY, "recording_uuid": REC}]


def test_retrieve_starts_over_in_a_sink_that_already_holds_bytes() -> None:
    client, _ = make_client(Script(audio(b"RIFF-new")))
    sink = io.BytesIO(b"left over from another source, longer than the recording")
    sink.seek(0, io.SEEK_END)

    client.retrieve_recording(REC, sink)

    assert sink.getvalue() == b"RIFF-new"


def test_api_source_fetches_through_the_client() -> None:
    client, _ = make_client(Script(audio(b"RIFF....WAVE")))
    source = ApiSource(client)
    request = FetchRequest(recording_uuid=REC, call_uuid=CALL)
    sink = io.BytesIO()

    assert source.name == "api"
    assert source.can_fetch(request) is True
    fetched = source.fetch(request, sink)
    assert fetched == Fetched(
        source="api",
        size=12,
        content_type="application/octet-stream; charset=UTF-8",
        declared_size=12,
    )
    assert sink.getvalue() == b"RIFF....WAVE"
    assert source.after_archived(request, fetched) is None


# -- status mapping ---------------------------------------------------------------------------


def test_400_is_invalid_request_with_the_fields_of_the_body() -> None:
    body = {
        "error_code": "INVALID_VALUE",
        "error_message": "Invalid parameter type or format",
        "fields": ["call_uuid"],
    }
    client, sleeps = make_client(Script(error(400, body)))

    with pytest.raises(InvalidRequest) as caught:
        client.start_recording("not-a-uuid")

    assert caught.value.fields == ["call_uuid"]
    assert "call_uuid" in str(caught.value)
    assert isinstance(caught.value, Terminal)
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_403_is_access_denied_pointing_at_the_setting(status: int) -> None:
    body = {"error_code": "BAD_CREDENTIALS", "error_message": "Bad credentials", "fields": []}
    script = Script(error(status, body))
    client, _ = make_client(script)

    with pytest.raises(AccessDenied) as caught:
        client.retrieve_recording(REC, io.BytesIO())

    assert "TENIOS_ACCESS_KEY" in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(script.requests) == 1


def test_404_on_retrieve_is_recording_not_found_with_its_uuid() -> None:
    client, _ = make_client(Script(httpx.Response(404)))

    with pytest.raises(RecordingNotFound) as caught:
        client.retrieve_recording(REC, io.BytesIO())

    assert caught.value.recording_uuid == REC
    assert REC in str(caught.value)


def test_404_on_stop_is_recording_not_found() -> None:
    client, _ = make_client(Script(error(404)))
    with pytest.raises(RecordingNotFound):
        client.stop_recording(REC)


def test_404_on_start_means_a_wrong_api_url() -> None:
    client, _ = make_client(Script(error(404)))
    with pytest.raises(InvalidRequest, match="TENIOS_API_URL"):
        client.start_recording(CALL)


@pytest.mark.parametrize("status", [409, 413, 422])
def test_other_client_errors_are_terminal(status: int) -> None:
    script = Script(error(status))
    client, _ = make_client(script)
    with pytest.raises(InvalidRequest):
        client.retrieve_recording(REC, io.BytesIO())
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_then_raised(status: int) -> None:
    script = Script(error(status))
    client, sleeps = make_client(script, max_attempts=3)

    with pytest.raises(ApiUnavailable) as caught:
        client.retrieve_recording(REC, io.BytesIO())

    assert caught.value.status_code == status
    assert caught.value.recording_uuid == REC
    assert isinstance(caught.value, Transient)
    assert len(script.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset by peer"),
    ],
)
def test_network_errors_are_transient(exc: httpx.HTTPError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    script = Script(fail, audio(b"ok"))
    client, sleeps = make_client(script)

    assert client.retrieve_recording(REC, io.BytesIO()).size == 2
    assert len(script.requests) == 2
    assert len(sleeps) == 1


def test_network_error_after_all_attempts_is_api_unavailable() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client, _ = make_client(Script(fail), max_attempts=2)
    with pytest.raises(ApiUnavailable, match="ConnectError") as caught:
        client.stop_recording(REC)
    assert caught.value.recording_uuid == REC


def test_200_with_a_body_that_is_not_json_is_transient() -> None:
    script = Script(httpx.Response(200, content=b"<html>proxy</html>"))
    client, _ = make_client(script, max_attempts=2)
    with pytest.raises(ApiUnavailable):
        client.stop_recording(REC)
    assert len(script.requests) == 2


# -- retries and backoff ----------------------------------------------------------------------


def test_backoff_is_exponential_and_capped() -> None:
    script = Script(error(503))
    client, sleeps = make_client(script, max_attempts=6, backoff_base=0.5, backoff_max=3.0)

    with pytest.raises(ApiUnavailable):
        client.retrieve_recording(REC, io.BytesIO())

    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_uses_full_jitter() -> None:
    script = Script(error(500))
    client, sleeps = make_client(
        script, max_attempts=30, backoff_base=1.0, backoff_max=8.0, rng=random.Random(7)
    )

    with pytest.raises(ApiUnavailable):
        client.retrieve_recording(REC, io.BytesIO())

    ceilings = [min(8.0, 2.0**n) for n in range(29)]
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) == len(sleeps)  # random, not fixed steps
    assert any(s < c / 2 for s, c in zip(sleeps, ceilings, strict=True))


def test_retry_after_seconds_is_honoured_and_capped() -> None:
    script = Script(
        error(429, **{"Retry-After": "7"}),
        error(503, **{"Retry-After": "120"}),
        audio(b"RIFF"),
    )
    client, sleeps = make_client(script, backoff_max=30.0)

    client.retrieve_recording(REC, io.BytesIO())

    assert sleeps == [7.0, 30.0]


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    script = Script(error(503, **{"Retry-After": format_datetime(when, usegmt=True)}), audio(b"x"))
    client, sleeps = make_client(script)

    client.retrieve_recording(REC, io.BytesIO())

    assert 15 <= sleeps[0] <= 20


def test_terminal_errors_are_not_retried() -> None:
    script = Script(error(403), audio(b"never"))
    client, sleeps = make_client(script)
    with pytest.raises(AccessDenied):
        client.retrieve_recording(REC, io.BytesIO())
    assert len(script.requests) == 1
    assert sleeps == []


def test_before_request_runs_before_every_request() -> None:
    calls: list[int] = []
    script = Script(error(503), error(429), audio(b"RIFF"))
    client, _ = make_client(script, before_request=lambda: calls.append(len(script.requests)))

    client.retrieve_recording(REC, io.BytesIO())

    assert calls == [0, 1, 2]  # each call happened before the request it precedes


def test_start_is_retried_only_when_nothing_was_done() -> None:
    script = Script(error(503), error(429), httpx.Response(200, json={"recording_uuid": REC}))
    client, _ = make_client(script)
    assert client.start_recording(CALL) == REC
    assert len(script.requests) == 3


@pytest.mark.parametrize("answer", [500, 502, "read-error"])
def test_start_is_not_retried_when_it_may_have_happened(answer: object) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset")

    script = Script(fail if answer == "read-error" else error(int(str(answer))))
    client, _ = make_client(script)
    with pytest.raises(ApiUnavailable):
        client.start_recording(CALL)
    assert len(script.requests) == 1


def test_start_is_retried_after_a_connect_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    script = Script(refuse, httpx.Response(200, json={"recording_uuid": REC}))
    client, _ = make_client(script)
    assert client.start_recording(CALL) == REC


# -- byte-exact retrieve ----------------------------------------------------------------------


def test_sink_is_reset_before_each_attempt() -> None:
    data = b"RIFF" + bytes(range(200)) * 50
    script = Script(
        lambda r: httpx.Response(
            200,
            headers={"content-length": str(len(data))},
            stream=BrokenStream(data[:3000], httpx.ReadError("connection reset by peer")),
        ),
        lambda r: httpx.Response(
            200,
            headers={"content-length": str(len(data))},
            stream=BrokenStream(b"garbage", httpx.RemoteProtocolError("peer closed")),
        ),
        audio(data),
    )
    client, sleeps = make_client(script)
    sink = io.BytesIO()

    result = client.retrieve_recording(REC, sink)

    assert sink.getvalue() == data
    assert result.size == len(data)
    assert len(sleeps) == 2


def test_mid_body_failure_after_all_attempts_is_truncated_body() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-length": "10000"},
            stream=BrokenStream(b"x" * 100, httpx.RemoteProtocolError("peer closed")),
        )

    client, _ = make_client(Script(broken), max_attempts=2)
    with pytest.raises(TruncatedBody, match="100 of 10000 bytes") as caught:
        client.retrieve_recording(REC, io.BytesIO())
    assert caught.value.recording_uuid == REC


def test_body_shorter_than_content_length_is_truncated_even_without_an_error() -> None:
    # A transport that does not police Content-Length itself (MockTransport does not).
    def short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "50"}, content=b"y" * 20)

    script = Script(short, short, audio(b"z" * 50))
    client, _ = make_client(script)
    sink = io.BytesIO()

    assert client.retrieve_recording(REC, sink).size == 50
    assert sink.getvalue() == b"z" * 50


# -- secrecy ----------------------------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.parametrize(
    "answer",
    [
        error(403, {"error_code": "BAD_CREDENTIALS", "error_message": f"Bad credentials {KEY}"}),
        error(400, {"error_code": "INVALID_VALUE", "error_message": f"bad {KEY}", "fields": [KEY]}),
        error(503, {"error_message": f"echo {KEY}"}),
        "connect",
        "read",
    ],
    ids=["403", "400", "503", "connect-error", "read-error"],
)
def test_the_access_key_never_appears_in_errors_or_tracebacks(
    answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if answer == "connect":
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadError("reset", request=request)

    caplog.set_level(logging.DEBUG)
    handler = answer if isinstance(answer, httpx.Response) else fail
    client, _ = make_client(Script(handler), max_attempts=2)

    with pytest.raises(ApiError) as caught:
        client.retrieve_recording(REC, io.BytesIO())

    assert KEY not in _all_text(caught.value)
    assert KEY not in caplog.text
    assert KEY not in repr(client)
    assert KEY not in repr(ApiSource(client))


def test_successful_calls_log_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(
        httpx.Response(200, json={"recording_uuid": REC}),
        httpx.Response(200, json={"success": "true"}),
        audio(b"RIFF"),
    )
    client, _ = make_client(script)
    client.start_recording(CALL)
    client.stop_recording(REC)
    client.retrieve_recording(REC, io.BytesIO())
    assert REC in caplog.text
    assert KEY not in caplog.text


# -- construction -----------------------------------------------------------------------------


def test_make_http_client_sets_timeouts_pool_and_base_url() -> None:
    with make_http_client(
        "https://api.tenios.com", pool_size=8, connect_timeout=3, read_timeout=40
    ) as http:
        assert http.timeout.connect == 3
        assert http.timeout.read == 40
        assert str(http.base_url) == "https://api.tenios.com"
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == 8
        assert pool._max_keepalive_connections == 8
        assert http.headers["user-agent"].startswith("tenios-archive/")


def test_client_needs_a_key_and_at_least_one_attempt() -> None:
    http = httpx.Client(transport=httpx.MockTransport(Script(audio(b""))))
    with pytest.raises(ValueError, match="access_key"):
        TeniosClient(http, "")
    with pytest.raises(ValueError, match="max_attempts"):
        TeniosClient(http, KEY, max_attempts=0)


def test_bad_credentials_on_a_400_is_access_denied() -> None:
    body = {"error_code": "BAD_CREDENTIALS", "error_message": "Bad credentials", "fields": []}
    client, _ = make_client(Script(error(400, body)))
    with pytest.raises(AccessDenied, match="TENIOS_ACCESS_KEY"):
        client.retrieve_recording(REC, io.BytesIO())
