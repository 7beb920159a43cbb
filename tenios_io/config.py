"""Settings: the only module that reads the environment.

Every variable of the README's Settings table is a typed, documented field here.
Values come from (highest first) the environment, an optional TOML file given
with ``--config`` (keys are the field names, e.g. ``s3_bucket = "archive"``, or
the variable names), then the defaults.  Errors name the variable and say what
to do; secret values never appear in them.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tenios_io.exceptions import ConfigError
from tenios_io.files import TEXT_FILE_LIMIT, FileTooLarge, read_capped
from tenios_io.untrusted import compile_name_pattern

ENV_PREFIX = "TENIOS_"
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
DEFAULT_SFTP_PATTERN = rf"(?P<recording_uuid>{UUID_RE})"
SECRET_FIELDS = frozenset(
    {"access_key", "sftp_password", "sftp_key_passphrase", "custody_key_file"}
)
#: How much of a bad value an error quotes: enough to recognise it, never a whole file.
QUOTE_LIMIT = 80
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
_WITNESS = re.compile(
    r"[^\s@+,]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]+={0,2}@https?://[^\s/@,]+(/[^\s@,]*)?"
)
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")
#: The longest retention a setting may ask for (100 years): S3 takes any date, but a
#: larger number is a typo (3,000,000 days ended the run in a traceback).
MAX_RETENTION_DAYS = 36_500
#: TENIOS_* variables read by the test harness, not by tenios-archive.
_NOT_SETTINGS = ("TENIOS_TEST_", "TENIOS_REQUIRE_POSTGRES")


def quote_value(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a bad value for an error message, cut to about ``limit`` characters
    (a one-line 50 MB import file must not end up in the message)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    length = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 1]}… ({length:,} characters)"


def mask_url_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and logs)."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def normalise_database_url(url: str) -> str:
    """The ledger URL as the engine wants it: ``postgres://`` and ``postgresql://`` mean
    psycopg 3; other drivers and in-memory SQLite are refused with what to use instead."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, sep, rest = url.partition(":")  # sqlite: alone
    dialect, _, driver = scheme.lower().partition("+")
    if dialect in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise ValueError(
                f"the {driver} driver is not supported (the ledger is synchronous): use "
                "postgresql+psycopg://user@host/db, or postgresql://user@host/db"
            )
        normalised = f"postgresql+psycopg://{rest}"
        try:
            urlsplit(normalised).port  # noqa: B018 - parsing is the check
        except ValueError:
            raise ValueError(
                "is not a valid URL (host or port): use postgresql+psycopg://user@host:5432/db "
                "and percent-encode special characters in the password"
            ) from None
        return normalised
    if dialect == "sqlite" and not driver:
        path = rest.removeprefix("/").split("?", 1)
        if path[0] in ("", ":memory:") or "mode=memory" in (path[1] if len(path) > 1 else ""):
            raise ValueError(
                "an in-memory SQLite ledger is lost when the command ends: name a file, "
                "e.g. sqlite:///tenios-archive.db"
            )
        return url
    raise ValueError(
        "must be a SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db"
    )


class Settings(BaseSettings):
    """tenios-archive settings (environment variables ``TENIOS_*``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    access_key: SecretStr | None = Field(
        default=None,
        description="TENIOS API access key (customer portal: My Account → General Settings → "
        "API). Required for API use. Secret: never logged.",
    )
    api_url: str = Field(
        default="https://api.tenios.com",
        description="Base URL of the TENIOS API (the simulator's URL for local runs).",
    )
    database_url: str = Field(
        default="sqlite:///tenios-archive.db",
        description="Ledger database as a SQLAlchemy URL: sqlite:///path.db or "
        "postgresql+psycopg://user@host/db.",
    )
    s3_bucket: str | None = Field(default=None, description="Archive bucket name.")
    s3_prefix: str = Field(default="recordings", description="Key prefix inside the bucket.")
    retention_mode: Literal["compliance", "governance", "none"] = Field(
        default="governance",
        description="Object Lock mode for archived objects: compliance, governance or none.",
    )
    retention_days: int = Field(
        default=2557,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="Retention in days from the recording's date (7 years); at least 1 "
        "with a lock mode (compliance, governance).",
    )
    s3_sse: Literal["AES256", "aws:kms"] | None = Field(
        default=None,
        description="Server-side encryption requested on every upload: AES256 (S3-managed keys) "
        "or aws:kms; unset = the bucket's default encryption.",
    )
    s3_kms_key_id: str | None = Field(
        default=None,
        description="KMS key id or ARN for TENIOS_S3_SSE=aws:kms; unset = the AWS-managed "
        "aws/s3 key. Only valid together with aws:kms.",
    )
    multipart_threshold_mb: int = Field(
        default=64,
        ge=5,
        le=5 * 1024,
        description="Recordings larger than this many MiB are uploaded in 16 MiB parts "
        "(multipart upload) instead of one PUT.",
    )
    spool_dir: Path | None = Field(
        default=None,
        description="Directory for the temporary spool files recordings are hashed into before "
        "upload (needs room for the largest recordings in flight); unset = the system "
        "temp directory.",
    )
    lease_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="Claim lease in seconds; renewed while a worker works.",
    )
    not_found_grace_hours: float = Field(
        default=48,
        ge=0,
        le=8760,
        allow_inf_nan=False,
        description="How long after registration a 404 means 'not ready yet'.",
    )
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Transient failures (5xx, throttling, dropped connections) of one recording "
        "are retried with backoff until it has been tried this often; then it is failed "
        "(`ledger requeue` puts it back). Not-ready 404s follow the grace period instead.",
    )
    api_rate_limit: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description="TENIOS API requests per second, all workers; unset = none.",
    )
    in_flight: int = Field(
        default=64,  # tenios_io.run.options.DEFAULT_IN_FLIGHT says why
        ge=1,
        le=1024,
        description="Recordings in the air at once per run process (fetch, hash, upload, "
        "read-back); `--in-flight` overrides it. 64 serves a nightly run against TENIOS "
        "and S3 over the internet; raise it for a backfill of millions.",
    )
    source_order: str = Field(
        default="sftp,api",
        description="Where to fetch a recording from, in order of preference: sftp (when the "
        "ledger knows its drop path and the file is there), api. Comma-separated.",
    )
    sftp_url: str | None = Field(
        default=None, description="SFTP drop as sftp://user@host:port/drop/dir; unset = no SFTP."
    )
    sftp_key_file: Path | None = Field(default=None, description="Private key file for SFTP.")
    sftp_key_passphrase: SecretStr | None = Field(
        default=None,
        description="Passphrase (secret) of an encrypted TENIOS_SFTP_KEY_FILE; a key without "
        "one is preferred.",
    )
    sftp_password: SecretStr | None = Field(
        default=None, description="SFTP password (secret) when no key file is used."
    )
    sftp_known_hosts: Path = Field(
        default=Path("~/.ssh/known_hosts"),
        description="known_hosts file the SFTP host key is checked against ([host]:port ok).",
    )
    sftp_pattern: str = Field(
        default=DEFAULT_SFTP_PATTERN,
        description="Regex for drop file names; the named group recording_uuid is required. "
        "Default: the first UUID in the name.",
    )
    sftp_settle_seconds: float = Field(
        default=60,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="A file must be unchanged this long before it is fetched.",
    )
    sftp_after: str = Field(
        default="keep",
        description="What to do with a drop file once archived and verified: keep, "
        "move:DIR or delete.",
    )
    custody_key_file: Path | None = Field(
        default=None,
        description="Ed25519 signer key (from `tenios-archive audit keygen`) that signs the "
        "custody log's checkpoints. Secret: the file's content is never printed. Required "
        "by runs and `audit checkpoint` unless TENIOS_CUSTODY_UNSIGNED=true.",
    )
    custody_unsigned: bool = Field(
        default=False,
        description="true = write the custody log's checkpoints unsigned when "
        "TENIOS_CUSTODY_KEY_FILE is unset (an explicit opt-out: auditors cannot verify an "
        "unsigned log from the bucket alone). Ignored when a key file is set.",
    )
    custody_witnesses: str | None = Field(
        default=None,
        description="Witnesses that cosign each custody log checkpoint: comma-separated "
        "VERIFIER_KEY@BASE_URL (the key `witness keygen` printed, the URL `witness serve` "
        "listens on). Unset = checkpoints are not witnessed.",
    )
    custody_witness_quorum: int | None = Field(
        default=None,
        ge=1,
        description="How many of TENIOS_CUSTODY_WITNESSES must cosign a checkpoint before "
        "the run calls it witnessed. Unset = all of them.",
    )
    verify_cycle_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="`audit verify --rolling` re-verifies the whole archive within this many "
        "days: each run checks ceil(archived / days) recordings, least recently verified first.",
    )
    alert_oldest_due_hours: float = Field(
        default=36.0,
        gt=0,
        le=8760,
        allow_inf_nan=False,
        description="A run through Prefect that ends with a recording due for longer than this "
        "emits the event tenios-archive.backlog.overdue (the automation `prefect apply` "
        "creates turns it into a notification).",
    )

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.tenios.com")
        return value.rstrip("/")

    @field_validator("retention_days")
    @classmethod
    def _retention_days(cls, value: int, info: ValidationInfo) -> int:
        mode = info.data.get("retention_mode")
        if value == 0 and mode in ("compliance", "governance"):
            raise ValueError(
                f"must be at least 1 with TENIOS_RETENTION_MODE={mode} (a lock for 0 days "
                "protects nothing, and every recording would be archived without one); "
                "set TENIOS_RETENTION_MODE=none for no retention"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("s3_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        # botocore's own check (it would raise ParamValidationError on the first call);
        # access point ARNs pass, as they do for boto3.
        if value is None or value.startswith("arn:") or _BUCKET.fullmatch(value):
            return value
        raise ValueError(
            "is not a bucket name: use lower-case letters, digits, '.' and '-' "
            "(3 to 63 characters), e.g. tenios-archive"
        )

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not re.fullmatch(r"[A-Za-z0-9._\-/]*", value) or ".." in value.split("/"):
            raise ValueError("may hold only letters, digits, '.', '_', '-' and '/' (no '..')")
        return value

    @field_validator("s3_kms_key_id")
    @classmethod
    def _kms_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("s3_sse") != "aws:kms":
            raise ValueError("is only used with TENIOS_S3_SSE=aws:kms; set that or unset this")
        return value

    @field_validator("sftp_url")
    @classmethod
    def _sftp_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^sftp://[^@/\s]+@[^/\s]+(/.*)?$", value):
            raise ValueError("must look like sftp://user@host:port/drop/dir")
        return value

    @field_validator("sftp_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        compile_name_pattern(value)  # RE2: a drop file name can never stall a sweep
        return value

    @field_validator("source_order")
    @classmethod
    def _order(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names or set(names) - {"sftp", "api"} or len(set(names)) != len(names):
            raise ValueError("must list sftp and/or api once each, e.g. sftp,api")
        return ",".join(names)

    @field_validator("sftp_after")
    @classmethod
    def _after(cls, value: str) -> str:
        if value in ("keep", "delete") or (value.startswith("move:") and len(value) > 5):
            return value
        raise ValueError("must be keep, delete or move:DIR")

    @field_validator("custody_witnesses")
    @classmethod
    def _witnesses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        entries = [entry.strip() for entry in value.split(",")]
        for entry in entries:
            if not _WITNESS.fullmatch(entry):
                raise ValueError(
                    f"entry {quote_value(entry)} is not VERIFIER_KEY@BASE_URL, e.g. "
                    "witness.example+1a2b3c4d+BAbC…@https://witness.example (the key as "
                    "`witness keygen` printed it; entries separated by commas)"
                )
        return ",".join(entries)

    @field_validator("custody_witness_quorum")
    @classmethod
    def _quorum(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return None
        witnesses = info.data.get("custody_witnesses")
        if not witnesses:
            raise ValueError("is only used with TENIOS_CUSTODY_WITNESSES; set that or unset this")
        count = len(witnesses.split(","))
        if value > count:
            raise ValueError(f"is {value}, but TENIOS_CUSTODY_WITNESSES names only {count}")
        return value

    def require_access_key(self) -> str:
        """The access key, or a ConfigError telling how to set it."""
        if self.access_key is None or not self.access_key.get_secret_value():
            raise ConfigError(
                f"{ENV_PREFIX}ACCESS_KEY is not set: put the TENIOS API access key "
                "(customer portal → My Account → General Settings → API) in the environment "
                "or the --config file.",
                variable=f"{ENV_PREFIX}ACCESS_KEY",
            )
        return self.access_key.get_secret_value()

    def require_bucket(self) -> str:
        """The bucket name, or a ConfigError telling how to set it."""
        if not self.s3_bucket:
            raise ConfigError(
                f"{ENV_PREFIX}S3_BUCKET is not set: name the archive bucket.",
                variable=f"{ENV_PREFIX}S3_BUCKET",
            )
        return self.s3_bucket


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(read_capped(path, TEXT_FILE_LIMIT).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except FileTooLarge as exc:
        raise ConfigError(f"config file {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    known = set(Settings.model_fields)
    for key, value in raw.items():
        name = key.lower().removeprefix(ENV_PREFIX.lower())
        if name not in known:
            raise ConfigError(
                f"config file {path}: unknown setting {key!r} (known: {', '.join(sorted(known))})"
            )
        values[name] = value
    return values


def _refuse_unknown_variables() -> None:
    """A mistyped TENIOS_* variable is an error, as an unknown TOML key is: silently
    running with the default instead (an unset bucket, the wrong ledger) is worse."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(
        key
        for key in os.environ
        if key.startswith(ENV_PREFIX) and key not in known and not key.startswith(_NOT_SETTINGS)
    )
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise ConfigError(
        f"unknown setting(s) in the environment: {', '.join(hints)}; unset or rename "
        "(the README's Settings table lists every variable)",
        variable=unknown[0],
    )


def allowed_range(field: str) -> str | None:
    """The documented range of a numeric setting ("between 10 and 86,400"), or None."""
    low = high = None
    low_open = high_open = False
    for bound in Settings.model_fields[field].metadata:  # annotated_types' Ge, Gt, Le, Lt
        if getattr(bound, "ge", None) is not None:
            low = bound.ge
        elif getattr(bound, "gt", None) is not None:
            low, low_open = bound.gt, True
        elif getattr(bound, "le", None) is not None:
            high = bound.le
        elif getattr(bound, "lt", None) is not None:
            high, high_open = bound.lt, True
    if low is None and high is None:
        return None
    if high is None:
        return f"{'above' if low_open else 'at least'} {low:,}"
    if low is None:
        return f"{'below' if high_open else 'at most'} {high:,}"
    if low_open or high_open:
        return (
            f"{'above' if low_open else 'at least'} {low:,} and "
            f"{'below' if high_open else 'at most'} {high:,}"
        )
    return f"from {low:,} to {high:,}"


#: pydantic's error types for a number out of its bounds or not a finite number.
_RANGE_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}
)


def _format_error(exc: ValidationError) -> str:
    """One line: each bad setting named, what is wrong and (numbers) the allowed range."""
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        variable = f"{ENV_PREFIX}{field.upper()}"
        msg = err["msg"].removeprefix("Value error, ")
        if field in Settings.model_fields and (
            err["type"] in _RANGE_ERRORS
            or (err["type"] in ("int_parsing", "float_parsing", "int_from_float"))
        ):
            allowed = allowed_range(field)
            if allowed is not None:
                whole = Settings.model_fields[field].annotation is int
                kind = "a whole number" if whole else "a number"
                msg = f"must be {kind} {allowed}"
        value = err.get("input")
        if field == "database_url" and isinstance(value, str):
            value = mask_url_password(value)
        shown = "" if field in SECRET_FIELDS else f" (got {quote_value(value)})"
        lines.append(f"{variable}: {msg}{shown}")
    if len(lines) == 1:
        return f"invalid setting {lines[0]}"
    return "invalid settings: " + "; ".join(lines)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; raise ConfigError naming the variable on any bad value."""
    file_values = _read_toml(Path(config_file)) if config_file else {}

    class _WithFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings)

    _refuse_unknown_variables()
    env_keys = {
        name for name in Settings.model_fields if f"{ENV_PREFIX}{name.upper()}" in os.environ
    }
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    try:
        loaded = _WithFile(**merged)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    # model_fields_set: the settings the operator gave (environment, file, overrides),
    # not those left at their defaults.
    given = env_keys | set(merged)
    return Settings.model_construct(_fields_set=given, **dict(loaded))
