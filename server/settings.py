"""The node's configuration: one frozen ``Settings``.

Values come, in increasing precedence, from the defaults below, an optional TOML
file (``GENOMEPORT_CONFIG=path.toml``, keys are the field names) and
``GENOMEPORT_<FIELD>`` environment variables. ``Settings.from_env`` is the only
reader of ``os.environ``; an unknown ``GENOMEPORT_*`` variable or TOML key is an
error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "GENOMEPORT_"


class SettingsError(ValueError):
    """Raised for an unknown key or a value that does not parse."""


@dataclass(frozen=True)
class Settings:
    # Storage and serving
    var_dir: str = "var"
    database_url: str = ""  # empty: sqlite:///<var_dir>/genomeport.db
    public_url: str = ""  # base of every URL handed out; empty: http://<host>:<port>
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    max_body_bytes: int = 1_048_576
    # fast paths on (comma list of: zerocopy; "none": all off)
    accel: str = "zerocopy"
    # Signed data URLs (htsget data plane, DRS access URLs, WES logs)
    signing_key: str = ""  # empty: generated once and kept in <var_dir>/signing.key
    data_url_ttl: int = 300
    htsget_block_size: int = 16 * 1024 * 1024
    # S3-compatible object storage for files registered at s3:// locations
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    # Access control: list of trusted issuers, each
    # {"issuer": ..., "jwks_uri"|"jwks"|"discovery": ..., "userinfo_endpoint": ...}
    auth_issuers: tuple = ()
    auth_audience: str = ""  # empty: public_url
    # visa issuers whose "jku" header may be followed: {"issuer": [jku, ...]}
    visa_jku_allowlist: dict = field(default_factory=dict)
    # Beacon
    beacon_id: str = "dk.genomeport.beacon"
    beacon_name: str = "genomeport Beacon"
    beacon_max_limit: int = 1000
    beacon_default_limit: int = 10
    beacon_default_granularity: str = "boolean"  # when a request names none (boolean/count/record)
    beacon_count_threshold: int = 5  # below record: carriers an allele needs; counts under: 0
    beacon_count_rounding: int = 10  # below-record tiers: other counts rounded to this
    # fold a dataset's deltas (genomes added or withdrawn) into its records once
    # more than this many are pending (after the add that passes it has committed)
    beacon_fold_after: int = 32
    beacon_rate_per_minute: int = 120  # per caller and dataset per UTC minute (0: unlimited)
    beacon_rate_per_day: int = 5000  # per caller and dataset per UTC day (0: unlimited)
    beacon_budgets: dict = field(default_factory=dict)  # per tier: {"boolean": {"day": 1000}}
    # WES
    wes_work_dir: str = ""  # empty: <var_dir>/wes
    wes_default_engine: str = "cwltool"
    wes_url_allowlist: tuple = ()  # hosts from which workflow_url may be fetched
    wes_max_attachments: int = 100
    wes_max_attachment_bytes: int = 10 * 1024 * 1024
    wes_max_fetch_bytes: int = 256 * 1024 * 1024  # largest http(s) input the node fetches at submit
    wes_slurm_partition: str = ""
    wes_toil_bin: str = ""  # toil-cwl-runner; empty: <var_dir> or ./var venvs/toil, then PATH
    wes_container: str = "auto"  # auto | none | docker: auto runs --no-container without one
    wes_input_roots: tuple = ()  # absolute server directories workflow inputs may read
    wes_worker_slots: int = 4  # runs one `genomeport worker` executes at once
    wes_heartbeat_timeout: int = 30  # seconds without a heartbeat before a run is lost
    wes_poll_ms: int = 200  # how often an idle worker looks for queued runs
    wes_node_callers: tuple = ()  # caller labels <issuer>|<sub> whose runs get the node's config
    wes_sandbox: str = "bwrap"  # bwrap (tools as genomeport-run) | none (a container isolates them)
    wes_allow_network: bool = False  # let workflows that require NetworkAccess reach the network
    wes_run_wall_seconds: int = 86400  # wall time of a run before the worker kills it (0: none)
    wes_run_cpu_seconds: int = 86400  # CPU seconds per process of a run (RLIMIT_CPU; 0: none)
    wes_run_memory_mb: int = 16384  # address space per process of a run, MiB (RLIMIT_AS; 0: none)
    wes_run_processes: int = 4096  # processes of the run user at once (RLIMIT_NPROC; 0: none)
    drs_max_bulk: int = 100
    # Data access management (server/auth/access.py)
    access_cache_seconds: int = 30  # how long a grant lookup is reused (0-60: revocation closes)
    access_max_days: int = 730  # the longest grant a DAC may give
    access_visa_ttl: int = 3600  # lifetime of a visa from /access/visas (cut to the grant's end)
    access_operators: tuple = ()  # caller labels <issuer>|<sub> who see and revoke every grant
    # Pages (/portal): OIDC authorization code + PKCE against this issuer
    oidc_issuer: str = ""  # empty: the first of auth_issuers
    oidc_client_id: str = "genomeport"
    # Crypt4GH: the node's key pair, the submitters' inbox, the encrypted archive
    c4gh_key_dir: str = ""  # empty: <var_dir>/keys
    c4gh_passphrase: str = field(default="", repr=False)  # the secret key's passphrase
    c4gh_passphrase_file: str = ""  # or a file holding it, readable by the node only (600)
    inbox_dir: str = ""  # empty: <var_dir>/inbox; s3://bucket/prefix: presigned multipart uploads
    archive_dir: str = ""  # empty: <var_dir>/archive
    inbox_max_chunk_bytes: int = 16 * 1024 * 1024  # largest chunk of one PUT
    inbox_max_upload_bytes: int = 1 << 40  # largest declared upload
    ingest_lease_seconds: int = 120  # an ingest claimed longer ago without progress is resumed

    def __post_init__(self) -> None:
        # Without a public URL the node names the address it binds, so the
        # tickets of `genomeport serve --port 9000` point at port 9000.
        object.__setattr__(self, "_public_url_derived", not self.public_url)
        if not self.public_url:
            object.__setattr__(self, "public_url", bound_url(self.host, self.port))
        _check_node_callers(self)
        if not 0 <= self.access_cache_seconds <= 60:
            raise SettingsError(
                f"{PREFIX}ACCESS_CACHE_SECONDS must be 0-60 (a revoked grant must close "
                "within 60 s)"
            )

    # ----------------------------------------------------------------- derived
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.var_dir).resolve() / 'genomeport.db'}"

    @property
    def effective_wes_work_dir(self) -> Path:
        return Path(self.wes_work_dir or Path(self.var_dir) / "wes").resolve()

    @property
    def effective_key_dir(self) -> Path:
        return Path(self.c4gh_key_dir or Path(self.var_dir) / "keys").resolve()

    @property
    def effective_inbox_dir(self) -> str:
        return str(Path(self.inbox_dir or Path(self.var_dir) / "inbox").resolve())

    @property
    def effective_archive_dir(self) -> Path:
        return Path(self.archive_dir or Path(self.var_dir) / "archive").resolve()

    @property
    def audience(self) -> str:
        return self.auth_audience or self.public_url

    def with_overrides(self, **kw: typing.Any) -> Settings:
        if self._public_url_derived and "public_url" not in kw:
            kw["public_url"] = ""  # derived again from the new host and port
        return dataclasses.replace(self, **kw)

    # ----------------------------------------------------------------- loading
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_env(cls, environ: typing.Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, typing.Any] = {}
        names = set(cls.field_names())
        config_path = environ.get(PREFIX + "CONFIG")
        if config_path:
            with open(config_path, "rb") as fh:
                data = tomllib.load(fh)
            for key, value in data.items():
                if key not in names:
                    raise SettingsError(f"{config_path}: unknown setting {key!r}")
                values[key] = _coerce(key, value)
        for key, raw in environ.items():
            if not key.startswith(PREFIX) or key == PREFIX + "CONFIG":
                continue
            name = key[len(PREFIX) :].lower()
            if name not in names:
                raise SettingsError(
                    f"unknown environment variable {key}; known: "
                    + ", ".join(PREFIX + n.upper() for n in sorted(names))
                )
            values[name] = _coerce(name, raw)
        return cls(**values)


def bound_url(host: str, port: int) -> str:
    """The URL of ``host:port`` as a client on this machine reaches it: a wildcard
    address (all interfaces) is reached through the loopback interface."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _check_node_callers(settings: Settings) -> None:
    """Each ``wes_node_callers`` entry is a caller label: ``<issuer>|<sub>``
    (the issuer one of ``auth_issuers`` when any are configured), or
    ``anonymous`` on a development node without issuers."""
    from urllib.parse import urlsplit

    issuers = {
        str(i.get("issuer", "")).rstrip("/") for i in settings.auth_issuers if isinstance(i, dict)
    }
    name = PREFIX + "WES_NODE_CALLERS"
    for entry in settings.wes_node_callers:
        if not isinstance(entry, str) or not entry or entry != entry.strip():
            raise SettingsError(f"{name}: {entry!r} is not a caller label (<issuer>|<sub>)")
        if entry == "anonymous":
            if settings.auth_issuers:
                raise SettingsError(
                    f"{name}: 'anonymous' cannot use WES on a node with "
                    "issuers; name the caller as <issuer>|<sub>"
                )
            continue
        issuer, sep, sub = entry.rpartition("|")
        parts = urlsplit(issuer)
        if not sep or not sub or parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(
                f"{name}: {entry!r} is not a caller label: expected <issuer>|<sub>, the token's "
                "'iss' (an http(s) URL) and 'sub' joined by '|', or 'anonymous'"
            )
        if issuers and issuer.rstrip("/") not in issuers:
            raise SettingsError(
                f"{name}: {entry!r} names issuer {issuer!r}, which is not one of "
                "GENOMEPORT_AUTH_ISSUERS"
            )


@functools.cache
def _field_types() -> dict[str, type]:
    """Each setting's declared type (the annotations are strings under
    ``from __future__ import annotations``; ``get_type_hints`` resolves them)."""
    return typing.get_type_hints(Settings)


def _coerce(name: str, value: typing.Any) -> typing.Any:
    kind = _field_types()[name]
    if isinstance(value, str) and kind is not str:
        try:
            if kind is int:
                return int(value)
            if kind is bool:
                return value.lower() in {"1", "true", "yes", "on"}
            value = json.loads(value)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}{name.upper()}: cannot parse {value!r}: {exc}") from None
    if kind is tuple:
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{name}: expected a list")
        return tuple(value)
    if kind is dict and not isinstance(value, dict):
        raise SettingsError(f"{name}: expected a table/object")
    if kind is int and not isinstance(value, int):
        raise SettingsError(f"{name}: expected an integer")
    if kind is str and not isinstance(value, str):
        raise SettingsError(f"{name}: expected a string")
    return value
