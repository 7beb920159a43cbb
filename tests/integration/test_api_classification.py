"""TENIOS answers classified by what they say, against the simulator over HTTP (issue 11).

On main a revoked key answered 400 BAD_CREDENTIALS was an "invalid request", a
redirect said only "refused (308)", and a wrong TENIOS_API_URL path was read as
"not ready yet" (404) for 48 hours.
"""

from __future__ import annotations

import io

import httpx
import pytest

from tenios_io.api import TeniosClient
from tenios_io.exceptions import AccessDenied, RecordingNotFound, Terminal, WrongApiUrl
from tenios_io.simulator import FaultPlan, Simulator, running_simulator
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for


def test_a_revoked_key_is_access_denied_from_then_on() -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, faults=FaultPlan(revoked_after=1))
    uuid = sim.add_recording(seconds=1.0)
    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http:
            client.retrieve_recording(uuid, io.BytesIO())
            with pytest.raises(AccessDenied, match="TENIOS_ACCESS_KEY") as caught:
                client.retrieve_recording(uuid, io.BytesIO())
    assert SIM_ACCESS_KEY not in str(caught.value)
    assert [r.status for r in sim.requests] == [200, 403]


def test_revoke_access_key_refuses_every_endpoint() -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY)
    uuid = sim.add_recording(seconds=1.0)
    sim.revoke_access_key()
    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http:
            for call in (
                lambda: client.retrieve_recording(uuid, io.BytesIO()),
                lambda: client.stop_recording(uuid),
                lambda: client.start_recording(sim.recording(uuid).call_uuid),
            ):
                with pytest.raises(AccessDenied):
                    call()


def test_a_redirect_names_its_location_and_the_setting_to_fix() -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, faults=FaultPlan(redirect=1.0))
    uuid = sim.add_recording(seconds=1.0)
    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http, pytest.raises(WrongApiUrl) as caught:
            client.retrieve_recording(uuid, io.BytesIO())
    expected = server.url.replace("http://", "https://").rstrip("/") + "/record-call/retrieve"
    assert caught.value.location == expected
    assert expected in str(caught.value) and "TENIOS_API_URL" in str(caught.value)
    assert "308" in str(caught.value) and isinstance(caught.value, Terminal)
    assert len(sim.requests) == 1  # not retried, not followed


def test_a_wrong_api_path_is_a_wrong_url_not_a_recording_not_ready() -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY)
    uuid = sim.add_recording(seconds=1.0, ready=False)
    with running_simulator(sim) as server:
        client, http = client_for(server.url.rstrip("/") + "/v2/")
        with http, pytest.raises(WrongApiUrl, match="TENIOS_API_URL"):
            client.retrieve_recording(uuid, io.BytesIO())
        right, http = client_for(server.url)
        with http, pytest.raises(RecordingNotFound):  # the real "not ready yet" stays so
            right.retrieve_recording(uuid, io.BytesIO())


def test_a_404_web_page_is_a_wrong_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html><body>404 Not Found</body></html>")

    http = httpx.Client(base_url="https://proxy.example", transport=httpx.MockTransport(handler))
    client = TeniosClient(http, "key", sleep=lambda _: None)
    with pytest.raises(WrongApiUrl, match="not a JSON answer"):
        client.retrieve_recording("8101fcb3-3843-4db3-9829-f7ab586625fe", io.BytesIO())
