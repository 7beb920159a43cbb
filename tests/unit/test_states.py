from __future__ import annotations

import pytest

from tenios_io.exceptions import IllegalTransition, Terminal
from tenios_io.ledger.states import TRANSITIONS, State, check_transition


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (State.PENDING, State.IN_PROGRESS),
        (State.IN_PROGRESS, State.ARCHIVED),
        (State.IN_PROGRESS, State.PENDING),
        (State.FAILED, State.PENDING),
        (State.ARCHIVED, State.PURGED),
    ],
)
def test_allowed(start: State, target: State) -> None:
    check_transition("r", start.value, target)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (State.PENDING, State.ARCHIVED),
        (State.ARCHIVED, State.PENDING),
        (State.PURGED, State.PENDING),
        (State.PENDING, State.PURGED),
    ],
)
def test_illegal_transition_raises_terminal(start: State, target: State) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition("r-1", start.value, target)
    assert isinstance(info.value, Terminal)
    assert "r-1" in str(info.value) and info.value.recording_uuid == "r-1"
