"""What an import says it did, for `ledger import` and `run backfill` (light: no
ledger or pipeline imported here, the commands' start-up stays short)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenios_io.ledger import ImportResult
    from tenios_io.run.interrupt import Interruption


def import_line(imported: ImportResult, interruption: Interruption | None) -> str:
    """What the backfill's import did, in one line."""
    if imported.stopped_after is not None:
        why = interruption.signal.name if interruption and interruption.signal else "a stop"
        if imported.stopped_after == 0:
            return (
                f"import stopped by {why} while reading the file ({imported.read:,} lines "
                "read): nothing imported; run it again"
            )
        return (
            f"import stopped by {why} after {imported.stopped_after:,} of {imported.read:,} "
            f"lines read: {imported.added:,} new (whole chunks, committed); run it again to "
            "import the rest"
        )
    return f"{imported.read:,} ids: {imported.added:,} new, {imported.known:,} already known" + (
        f", {imported.duplicates:,} repeated in the file" if imported.duplicates else ""
    )
