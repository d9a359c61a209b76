"""One typed settings object for the whole platform.

Values come, in this order of precedence, from keyword arguments, `CUBEPORT_*` environment variables
(nested with `__`, e.g. `CUBEPORT_S3__ENDPOINT_URL`), and an optional YAML file named by
`CUBEPORT_CONFIG` (or passed as `config_file`). Nothing is read at import time.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cubeport.errors import ConfigError

DEFAULT_DATA_ROOT = "./cubeport-data"


class S3Settings(BaseModel):
    """Connection to an S3-compatible object store, used when the data root is `s3://...`."""

    endpoint_url: str | None = Field(None, description="e.g. http://127.0.0.1:8333; None for AWS")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    region: str = "us-east-1"
    connect_timeout: float = Field(5.0, description="seconds before an unreachable endpoint is reported")


class CubeLayoutSettings(BaseModel):
    """How cubes are chunked on disk; the defaults suit 256 px map tiles and year-long time series."""

    spatial_chunk: int = Field(
        256, ge=16, description="y/x chunk size of the map-chunked cube and its levels"
    )
    timeseries_chunk: int = Field(128, ge=1, description="time chunk of the time-chunked twin")
    timeseries_spatial_chunk: int = Field(32, ge=1, description="y/x chunk size of the time-chunked twin")
    pyramid: bool = Field(True, description="build 2x pyramid levels at ingestion")
    timeseries_twin: bool = Field(True, description="build a time-chunked twin at ingestion")
    timeseries_min_steps: int = Field(
        16, ge=1, description="build the twin once a cube has this many steps (fewer read fast enough by map)"
    )


class CacheSettings(BaseModel):
    """The rolling cache of remote data (whole objects or byte ranges), kept under a quota."""

    root: str | None = Field(
        None, description="local folder or s3://bucket/prefix [default: cache/ under the data root]"
    )
    quota_bytes: int = Field(10 * 2**30, gt=0, description="most bytes the cache holds")
    high_watermark: float = Field(
        0.9, gt=0, le=1, description="fraction of the quota that starts an eviction"
    )
    low_watermark: float = Field(
        0.7, gt=0, lt=1, description="fraction of the quota an eviction goes down to"
    )
    ttl_seconds: float = Field(7 * 86400, gt=0, description="older entries are fetched again, never served")
    max_object_bytes: int = Field(
        2**30,
        gt=0,
        description="larger objects are refused (objects are held in "
        "memory while they are checked): fetch them in byte ranges",
    )
    timeout_seconds: float = Field(30.0, gt=0, description="connect and read timeout of a download")

    @model_validator(mode="after")
    def _ordered_watermarks(self) -> CacheSettings:
        if self.low_watermark >= self.high_watermark:
            raise ValueError("cache.low_watermark must be below cache.high_watermark")
        return self


class OidcProviderSettings(BaseModel):
    """A trusted OpenID Connect provider (Keycloak, Auth0, ...). Its keys are found through discovery."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="short name used in URLs and user names"
    )
    issuer: str = Field(
        description="the `iss` of its tokens; discovery is at {issuer}/.well-known/openid-configuration"
    )
    audience: list[str] = Field(
        default_factory=lambda: ["cubeport"], description="accepted `aud` values of bearer tokens"
    )
    client_id: str = Field(
        "cubeport", description="client id for the browser sign-in (authorization code + PKCE)"
    )
    client_secret: SecretStr | None = Field(None, description="only for confidential clients")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"],
        description="allow-list of signature algorithms; never `none` or HS*",
    )
    scopes: str = "openid profile email"
    username_claim: str = "preferred_username"
    role_claims: list[str] = Field(
        default_factory=lambda: ["realm_access.roles", "resource_access.{client_id}.roles"],
        description="dotted claim paths holding role names (Keycloak's defaults)",
    )
    group_claims: list[str] = Field(
        default_factory=lambda: ["groups"], description="dotted claim paths of groups"
    )
    role_map: dict[str, Literal["viewer", "editor", "admin"]] = Field(
        default_factory=dict,
        description="provider role -> admin | editor | viewer, e.g. {cubeport-admin: admin}; only roles "
        "listed here grant Cubeport roles (a provider role called `admin` is not one): without a map, "
        "every provider user is a viewer",
    )
    leeway_seconds: int = Field(30, ge=0, le=300, description="clock skew allowed on exp and nbf")
    jwks_min_refresh_seconds: float = Field(
        30.0, ge=0, description="an unknown `kid` refreshes the keys at most this often"
    )

    @model_validator(mode="after")
    def _safe_algorithms(self) -> OidcProviderSettings:
        unsafe = [a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if unsafe:
            raise ValueError(f"algorithms {unsafe} are not allowed for provider tokens (use RS*, PS*, ES*)")
        return self


class AuthSettings(BaseModel):
    """Sign-in, sessions, API keys, default access and throttling."""

    oidc: list[OidcProviderSettings] = Field(default_factory=list, description="trusted OIDC providers")
    default_access: Literal["public", "restricted"] = Field(
        "public", description="access of a resource nobody has set access for"
    )
    session_hours: float = Field(12.0, gt=0, description="lifetime of a browser session")
    cookie_secure: bool = Field(
        True,
        description="send the session cookie over HTTPS only (browsers treat http://localhost as secure)",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="if set and no admin exists, an `admin` account with this password is created at start",
    )
    max_failures: int = Field(
        5, ge=1, description="failed sign-ins for one account from one client address before throttling"
    )
    account_max_failures: int = Field(
        20, ge=1, description="failed sign-ins for one account from any addresses before throttling"
    )
    address_max_failures: int = Field(
        50, ge=1, description="failed sign-ins from one client address for any accounts before throttling"
    )
    trusted_proxy_header: str | None = Field(
        None,
        description="header in which trusted reverse proxies name the client (e.g. X-Forwarded-For); unset: "
        "the socket address, and such headers are ignored. Set it only when every request comes through "
        "the proxies",
    )
    trusted_proxy_hops: int = Field(
        1,
        ge=1,
        description="how many trusted proxies append to that header: the client is this many entries "
        "from its right end",
    )
    failure_window_seconds: int = Field(900, ge=1, description="window in which failures are counted")
    lockout_seconds: int = Field(60, ge=1, description="first wait once throttled; doubles with each failure")


class ProcessingSettings(BaseModel):
    """Where processing jobs run and how many at once."""

    scheduler: str | None = Field(
        None,
        description="address of a Dask distributed scheduler (tcp://host:8786); unset: jobs run in local "
        "worker processes of the server",
    )
    run_jobs: bool = Field(
        True, description="servers run queued jobs (false: this server only queues them for others to run)"
    )
    workers: int = Field(2, ge=1, le=64, description="jobs run at once by the local executor (per server)")
    max_jobs_per_user: int = Field(
        2, ge=1, description="jobs of one user running at once; the next ones wait in `accepted`"
    )
    user_processes: str | None = Field(
        None, description="folder of user processes (*.py modules declaring @process functions)"
    )
    work_dir: str | None = Field(
        None,
        description="scratch folder of running jobs (on a multi-host Dask cluster: a shared file system) "
        "[default: cubeport-jobs in the system's temporary folder]",
    )
    heartbeat_seconds: float = Field(2.0, gt=0, description="how often a running job reports that it lives")
    stale_seconds: float = Field(
        30.0, gt=0, description="a running job silent for this long is taken for dead (its worker stopped)"
    )
    max_attempts: int = Field(2, ge=1, le=10, description="tries of a retry-safe job whose worker died")
    sync_seconds: float = Field(
        60.0, gt=0, description="how long a synchronous execution waits before it answers as a job"
    )


class SeaIceSettings(BaseModel):
    """The sea-ice chain: science parameters, the output grid and the limits a delivery must keep."""

    reference_angle: float = Field(
        25.0, ge=10, le=60, description="incidence angle (degrees) backscatter is corrected to"
    )
    slope_db_per_degree: float = Field(
        -0.2,
        ge=-2,
        le=2,
        description="backscatter change per degree of incidence (dB/deg) for the correction",
    )
    class_slopes: dict[Literal["open_water", "new_ice", "level_ice", "deformed_ice", "fast_ice"], float] = (
        Field(
            default_factory=dict,
            description="per-class slopes (dB/deg) by class name (open_water, new_ice, level_ice, deformed_ice, "
            "fast_ice); classes not named use slope_db_per_degree",
        )
    )
    chart_crs: str = Field(
        "+proj=merc +lat_ts=61.6666666667 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs",
        description="CRS of rectified scenes (default: the ice-chart Mercator, true scale at 61 deg 40 min N)",
    )
    resolution: float = Field(50.0, gt=0, description="pixel size (metres, in chart_crs) of rectified scenes")
    resampling: Literal["nearest", "bilinear", "cubic", "average"] = Field(
        "bilinear", description="resampling of the georectification (classes are always nearest)"
    )
    land_polygons: str | None = Field(
        None,
        description="land polygons file (e.g. GSHHG full resolution as GeoPackage or Shapefile) "
        "[default: the GLOBE 30'' mask of global-land-mask, about 1 km]",
    )
    coastal_buffer_m: float = Field(200.0, ge=0, description="land mask grown seawards by this many metres")
    classifier_model: str | None = Field(
        None, description="a trained scikit-learn model file (joblib) used instead of the per-scene mixture"
    )
    max_delivery_files: int = Field(16, ge=1, description="most files a delivery (folder or zip) may hold")
    max_delivery_bytes: int = Field(
        8 * 2**30,
        ge=1,
        description="largest uncompressed size of a delivery (bytes); a zip is checked before extraction",
    )
    quarantine: str | None = Field(
        None,
        description="folder rejected deliveries go to [default: seaice/quarantine under a local data_root]",
    )
    cube: str = Field("baltic-ice", description="the daily ice cube each processed scene is added to")
    cube_resolution: float = Field(500.0, gt=0, description="pixel size (metres) of the daily ice cube")


class OpsSettings(BaseModel):
    """Near-real-time operations: where suite runs keep their files, how the runner polls, watchers' limits."""

    folder: str | None = Field(
        None,
        description="local folder of suite runs (task outputs, work files) and the watchers' staging area "
        "[default: ops/ under a local data_root; required with an S3 data_root]",
    )
    poll_seconds: float = Field(
        1.0, gt=0, le=60, description="how often the runner checks tasks and schedules"
    )
    timeout_seconds: float = Field(
        30.0, gt=0, description="connection timeout of watchers and delivery targets"
    )
    ca_file: str | None = Field(
        None,
        description="CA certificates (PEM) that FTPS servers of watchers and targets are checked against "
        "[default: the system's]",
    )
    max_file_bytes: int = Field(
        8 * 2**30, gt=0, description="larger delivered files are recorded, not fetched"
    )
    min_free_bytes: int = Field(
        2**30,
        ge=0,
        description="free space kept in the staging area; a fetch that would eat into it pauses its watcher",
    )


class EnergySettings(BaseModel):
    """Factors of the energy and carbon estimate shown beside usage; the defaults and their sources are in
    `cubeport.platform.energy`. Replace them with the deployment's own hardware, data centre and grid."""

    watts_per_core: float = Field(
        12.0, ge=0, description="power of one busy CPU core (W); CPU-seconds x this is compute energy"
    )
    watts_per_tb: float = Field(
        1.2,
        ge=0,
        description="power of storage per terabyte (10^12 bytes) held (W), including every copy kept "
        "(three replicas: three times the per-copy figure)",
    )
    grid_gco2e_per_kwh: float = Field(
        250.0, ge=0, description="carbon intensity of the electricity the servers use (g CO2e per kWh)"
    )
    pue: float = Field(
        1.0,
        ge=1,
        description="power usage effectiveness of the data centre (total power / IT power; 1.0 counts the "
        "IT equipment alone)",
    )


class Settings(BaseSettings):
    """Cubeport's settings. `docs/configuration.md` lists every field."""

    model_config = SettingsConfigDict(
        env_prefix="CUBEPORT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_root: str = Field(DEFAULT_DATA_ROOT, description="local folder or s3://bucket/prefix")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: sqlite file `cubeport.db` under a local data root"
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    s3: S3Settings = Field(default_factory=S3Settings)
    layout: CubeLayoutSettings = Field(default_factory=CubeLayoutSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)
    seaice: SeaIceSettings = Field(default_factory=SeaIceSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    energy: EnergySettings = Field(default_factory=EnergySettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["plain", "json"] = Field(
        "plain",
        description="plain: uvicorn's text lines; json: one JSON object per line with the fields the "
        "Destination Earth platform monitors (@timestamp, service_name, event_timestamp, event_type, user_ID)",
    )
    service_name: str = Field(
        "cubeport",
        min_length=1,
        description="`service_name` of JSON log lines: this service in the platform's logs",
    )
    secret_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="signs what the server hands out and checks when it comes back (federated search "
        "tokens); the same for every worker. Unset: one is generated once and kept under the data root",
    )
    request_seconds: float = Field(
        30.0,
        gt=0,
        description="time budget of one API request; past it the request "
        "ends with 422 problem JSON that names the limit",
    )
    max_body_bytes: int = Field(
        16 * 2**20,
        gt=0,
        description="largest request body the API reads; a larger one is refused with 413 problem JSON "
        "(routes may have smaller limits)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("CUBEPORT_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ConfigError(f"CUBEPORT_CONFIG names {config_file!r}, which is not a file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _normalise_root(self) -> Settings:
        if not self.is_s3:
            self.data_root = str(Path(self.data_root).expanduser().absolute())
        elif not self.data_root.removeprefix("s3://").strip("/"):
            raise ValueError("an S3 data root needs a bucket, e.g. s3://cubes/prefix")
        return self

    @property
    def is_s3(self) -> bool:
        return self.data_root.startswith("s3://")

    @cached_property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under a local data root."""
        if self.database_url:
            return self.database_url
        if self.is_s3:
            raise ConfigError(
                "an S3 data root needs a database: set CUBEPORT_DATABASE_URL "
                "(e.g. sqlite:///./cubeport.db or postgresql+psycopg://user@host/db)"
            )
        return f"sqlite:///{Path(self.data_root) / 'cubeport.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the optional YAML file, with `overrides` on top (None ignored)."""
    from pydantic import ValidationError

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
