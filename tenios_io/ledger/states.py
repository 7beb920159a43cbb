"""Recording states and the one table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from tenios_io.exceptions import IllegalTransition


class State(StrEnum):
    """Where a recording is in its life."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    ARCHIVED = "archived"
    MISSING = "missing"
    FAILED = "failed"
    CONFLICT = "conflict"
    PURGED = "purged"


#: Every allowed move. in_progress → in_progress is the rescue of an expired lease.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.IN_PROGRESS}),
    State.IN_PROGRESS: frozenset(
        {
            State.IN_PROGRESS,
            State.PENDING,
            State.ARCHIVED,
            State.MISSING,
            State.FAILED,
            State.CONFLICT,
        }
    ),
    State.ARCHIVED: frozenset({State.PURGED}),
    State.MISSING: frozenset({State.PENDING}),
    State.FAILED: frozenset({State.PENDING}),
    State.CONFLICT: frozenset({State.PENDING}),
    State.PURGED: frozenset(),
}

#: States an operator can requeue (back to pending).
REQUEUEABLE = frozenset({State.MISSING, State.FAILED, State.CONFLICT})
#: States a worker may end a claim in.
OUTCOMES = frozenset({State.ARCHIVED, State.MISSING, State.FAILED, State.CONFLICT})


def check_transition(recording_uuid: str, current: str, target: State) -> None:
    """Raise IllegalTransition unless ``current → target`` is allowed."""
    if target not in TRANSITIONS[State(current)]:
        raise IllegalTransition(recording_uuid, current, target.value)
