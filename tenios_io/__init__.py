"""tenios-archive: archive TENIOS call recordings into S3 with a verifiable custody ledger."""

from __future__ import annotations

from functools import cache

__all__ = ["__version__"]


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tenios-archive")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+local"


def __getattr__(name: str) -> str:
    # Looked up on first use (PEP 562): importlib.metadata costs every CLI start ~50 ms.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
