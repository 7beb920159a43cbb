"""Keyset pagination: the one way the ledger reads a large table in pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

T = TypeVar("T")


def keyset_pages(
    engine: Engine,
    query: sa.Select[Any],
    key: sa.ColumnElement[Any],
    convert: Callable[[Mapping[Any, Any]], T],
    *,
    after: Any,
    page: int = 5000,
) -> Iterator[T]:
    """Rows of ``query`` in ``key`` order, ``page`` at a time, from just after ``after``.

    Each page is its own short read transaction, so a long read holds no snapshot
    open (on SQLite a reader then never stands in a writer's way, and the WAL can be
    checkpointed).  ``key`` must be unique and be a column of the result.
    """
    last = after
    name = str(key.key)
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query.where(key > last).order_by(key).limit(page)).mappings().all()
        if not rows:
            return
        for row in rows:
            yield convert(row)
        last = rows[-1][name]
