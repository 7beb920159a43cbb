"""`tenios-archive store ...`: the archive bucket itself."""

from __future__ import annotations

from typing import Annotated

import typer

from tenios_io.cli._common import console, settings

app = typer.Typer(help="The archive bucket (S3).", no_args_is_help=True)


@app.callback()
def _store() -> None:
    """The archive bucket (S3).  (A callback keeps `store` a group of one command.)"""


@app.command("create-bucket")
def create_bucket(
    ctx: typer.Context,
    bucket: Annotated[
        str | None,
        typer.Option(help="Bucket to create (default: TENIOS_S3_BUCKET).", show_default=False),
    ] = None,
) -> None:
    """Create the archive bucket with Object Lock (and so versioning) enabled.

    In the region and endpoint of boto3's own settings (AWS_REGION / AWS_PROFILE,
    AWS_ENDPOINT_URL_S3 for a local moto server).  A bucket of yours that already has
    Object Lock is fine (exit 0); one without it, or a name another account holds,
    exits 2.
    """
    from tenios_io.exceptions import ConfigError, StoreError
    from tenios_io.store import make_s3_client
    from tenios_io.store.create import create_archive_bucket

    name = bucket or settings(ctx).require_bucket()
    try:
        made = create_archive_bucket(make_s3_client(max_attempts=3), name)
    except StoreError as exc:
        raise ConfigError(f"store create-bucket: {exc}", variable="TENIOS_S3_BUCKET") from None
    what = "created" if made.created else "already exists"
    console.print(
        f"bucket {made.name} {what} in {made.region}, with Object Lock and versioning",
        soft_wrap=True,
        markup=False,
    )
