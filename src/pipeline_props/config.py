"""Settings: one frozen object built from defaults < YAML file < E2E_* environment < CLI.

The YAML file is ``--config PATH`` or ``$E2E_CONFIG``. Its sections are
``test_data``, ``infrastructure``, ``pipeline_stages`` and ``run`` (see
docs/configuration.md). An unknown key or a bad value raises
:class:`~pipeline_props.errors.ConfigError` naming the key, the value and
what was expected, and where the value came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from pipeline_props.errors import ConfigError

Backend = Literal["local", "external", "containers"]
Warehouse = Literal["postgres", "duckdb", "snowflake"]
DbtMode = Literal["full", "incremental"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

SECRET_KEYS = frozenset({"postgres_password", "postgres_dsn", "snowflake_password",
                         "snowflake_private_key_passphrase"})


def _default_home() -> str:
    return os.environ.get("PIPELINE_PROPS_HOME", str(Path.home() / ".cache" / "pipeline-props"))


@dataclass(frozen=True)
class TestDataSettings:
    """Dataset sizes the scenarios use."""

    __test__ = False  # not a pytest test class

    small_dataset_size: int = 100
    medium_dataset_size: int = 1000
    large_dataset_size: int = 10000


@dataclass(frozen=True)
class InfrastructureSettings:
    """Where the services run and how the harness reaches them."""

    backend: Backend = "local"
    kafka_port: int = 29092
    kafka_controller_port: int = 29093
    postgres_port: int = 15432
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_db: str = "postgres"
    postgres_host: str = "127.0.0.1"
    #: external backend: a libpq conninfo / URL; overrides host, port, user, password, db.
    postgres_dsn: str = ""
    #: external backend: bootstrap servers of the team's Kafka.
    kafka_bootstrap_servers: str = ""
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    kafka_heap: str = "512m"
    #: Folder for service state, data dirs and logs of the local backend.
    home: str = field(default_factory=_default_home)
    cleanup_containers_on_success: bool = True
    #: local backend: port of the Snowflake emulator (fakesnow), started for --warehouse snowflake.
    fakesnow_port: int = 18931
    #: A real Snowflake account instead of the emulator (docs/snowflake.md); empty: the emulator.
    snowflake_account: str = ""
    snowflake_user: str = ""
    snowflake_password: str = field(default="", repr=False)
    snowflake_private_key_path: str = ""
    snowflake_private_key_passphrase: str = field(default="", repr=False)
    snowflake_role: str = ""
    snowflake_warehouse: str = ""
    snowflake_database: str = ""
    startup_timeout_s: float = 90.0
    #: `pipeline-props cluster up` (docs/cluster.md): first broker's client port; broker i
    #: listens on +2i and its controller on +2i+1.
    cluster_kafka_port: int = 27092
    #: Spark master port; workers +1 and +2, web UIs (master, workers) +3, +4, +5.
    cluster_spark_port: int = 27077
    cluster_postgres_port: int = 25432

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers for clients."""
        if self.backend == "external" and self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def logs_dir(self) -> Path:
        """Folder the local services log to (errors point here)."""
        return Path(self.home) / "logs"


@dataclass(frozen=True)
class PipelineStageSettings:
    """Thresholds of the per-stage validators."""

    min_data_quality_score: float = 0.80
    max_duplicate_percentage: float = 0.01
    max_null_rate: float = 0.05


@dataclass(frozen=True)
class RunSettings:
    """How `pipeline-props run` behaves."""

    artifacts_dir: str = "artifacts"
    warehouse: Warehouse = "postgres"
    log_level: LogLevel = "INFO"
    cleanup_on_failure: bool = True
    preserve_test_data: bool = False
    kafka_partitions: int = 2
    #: full: the marts rebuilt from scratch; incremental: dbt incremental models (docs/architecture.md).
    dbt_mode: DbtMode = "full"
    #: The dataset arrives in this many batches, the marts built and compared after each.
    batches: int = 1


@dataclass(frozen=True)
class Settings:
    """All settings of pipeline-props. Build it with :func:`load_settings`."""

    test_data: TestDataSettings = field(default_factory=TestDataSettings)
    infrastructure: InfrastructureSettings = field(default_factory=InfrastructureSettings)
    pipeline_stages: PipelineStageSettings = field(default_factory=PipelineStageSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets removed, for reports and metadata."""
        out = dataclasses.asdict(self)
        for key in SECRET_KEYS:
            if out["infrastructure"].get(key):
                out["infrastructure"][key] = "***"
        return out


# The environment variables users already know, as (section, key).
ENV_VARS: dict[str, tuple[str, str]] = {
    "E2E_SMALL_DATASET_SIZE": ("test_data", "small_dataset_size"),
    "E2E_MEDIUM_DATASET_SIZE": ("test_data", "medium_dataset_size"),
    "E2E_LARGE_DATASET_SIZE": ("test_data", "large_dataset_size"),
    "E2E_KAFKA_PORT": ("infrastructure", "kafka_port"),
    "E2E_KAFKA_CONTROLLER_PORT": ("infrastructure", "kafka_controller_port"),
    "E2E_POSTGRES_PORT": ("infrastructure", "postgres_port"),
    "E2E_BACKEND": ("infrastructure", "backend"),
    "E2E_KAFKA_BOOTSTRAP_SERVERS": ("infrastructure", "kafka_bootstrap_servers"),
    "E2E_POSTGRES_DSN": ("infrastructure", "postgres_dsn"),
    "E2E_SPARK_MASTER": ("infrastructure", "spark_master"),
    "E2E_LOG_LEVEL": ("run", "log_level"),
    "E2E_CLEANUP_ON_FAILURE": ("run", "cleanup_on_failure"),
    "E2E_PRESERVE_TEST_DATA": ("run", "preserve_test_data"),
    "E2E_ARTIFACTS_DIR": ("run", "artifacts_dir"),
    "E2E_WAREHOUSE": ("run", "warehouse"),
    "E2E_DBT_MODE": ("run", "dbt_mode"),
    "E2E_BATCHES": ("run", "batches"),
    "E2E_FAKESNOW_PORT": ("infrastructure", "fakesnow_port"),
    "E2E_CLUSTER_KAFKA_PORT": ("infrastructure", "cluster_kafka_port"),
    "E2E_CLUSTER_SPARK_PORT": ("infrastructure", "cluster_spark_port"),
    "E2E_CLUSTER_POSTGRES_PORT": ("infrastructure", "cluster_postgres_port"),
    "E2E_SNOWFLAKE_ACCOUNT": ("infrastructure", "snowflake_account"),
    "E2E_SNOWFLAKE_USER": ("infrastructure", "snowflake_user"),
    "E2E_SNOWFLAKE_PASSWORD": ("infrastructure", "snowflake_password"),
    "E2E_SNOWFLAKE_PRIVATE_KEY_PATH": ("infrastructure", "snowflake_private_key_path"),
    "E2E_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": ("infrastructure", "snowflake_private_key_passphrase"),
    "E2E_SNOWFLAKE_ROLE": ("infrastructure", "snowflake_role"),
    "E2E_SNOWFLAKE_WAREHOUSE": ("infrastructure", "snowflake_warehouse"),
    "E2E_SNOWFLAKE_DATABASE": ("infrastructure", "snowflake_database"),
}

_SECTIONS: dict[str, type] = {
    "test_data": TestDataSettings,
    "infrastructure": InfrastructureSettings,
    "pipeline_stages": PipelineStageSettings,
    "run": RunSettings,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(key: str, value: Any, annotation: Any, source: str) -> Any:
    """Convert ``value`` to ``annotation`` or raise a ConfigError naming the key."""
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        text = value.upper() if isinstance(value, str) and key == "log_level" else value
        if text in choices:
            return text
        raise ConfigError(key, value, "one of " + ", ".join(map(str, choices)), source=source)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(key, value, "a boolean (true/false)", source=source)
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(key, value, "an integer", source=source)
        try:
            number = int(str(value).strip(), 10)
        except ValueError:
            raise ConfigError(key, value, "an integer", source=source) from None
        if key.endswith("_port") and not 1 <= number <= 65535:
            raise ConfigError(key, value, "a port number 1-65535", source=source)
        if key.endswith("_size") and number < 0:
            raise ConfigError(key, value, "a non-negative integer", source=source)
        if key in ("kafka_partitions", "batches") and number < 1:
            raise ConfigError(key, value, "an integer >= 1", source=source)
        return number
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(key, value, "a number", source=source)
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ConfigError(key, value, "a number", source=source) from None
        if key in {"min_data_quality_score", "max_duplicate_percentage", "max_null_rate"} and not (
            0.0 <= number <= 1.0
        ):
            raise ConfigError(key, value, "a fraction between 0 and 1", source=source)
        if key.endswith("_s") and number <= 0:
            raise ConfigError(key, value, "a positive number of seconds", source=source)
        return number
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(key, value, "a string", source=source)
        return str(value)
    raise AssertionError(f"unhandled annotation {annotation!r}")  # pragma: no cover


def _apply(settings: Settings, section: str, values: Mapping[str, Any], source: str) -> Settings:
    cls = _SECTIONS.get(section)
    if cls is None:
        raise ConfigError(section, values, "a section: " + ", ".join(_SECTIONS), source=source)
    if not isinstance(values, Mapping):
        raise ConfigError(section, values, "a mapping of keys to values", source=source)
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{section}.{key}", value, f"one of the keys {', '.join(sorted(known))}", source=source
            )
        changes[key] = _coerce(key, value, hints[key], source)
    return replace(settings, **{section: replace(getattr(settings, section), **changes)})


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings: defaults < YAML (``config_file`` or ``$E2E_CONFIG``) < env < overrides.

    ``overrides`` has the YAML shape (``{"infrastructure": {"kafka_port": 1}}``)
    and comes from CLI flags or ``E2EPipelineTestSuite(config_override=...)``.
    """
    env = os.environ if env is None else env
    settings = Settings()
    path = config_file or env.get("E2E_CONFIG")
    if path:
        settings = _apply_yaml(settings, Path(path))
    for var, (section, key) in ENV_VARS.items():
        if var in env and env[var] != "":
            settings = _apply(settings, section, {key: env[var]}, source=f"${var}")
    for section, values in (overrides or {}).items():
        settings = _apply(settings, section, values, source="override")
    return settings


def _apply_yaml(settings: Settings, path: Path) -> Settings:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", str(path), "an existing YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError("--config", str(path), f"valid YAML ({exc})") from None
    if data is None:
        return settings
    if not isinstance(data, Mapping):
        raise ConfigError("--config", str(path), "a YAML mapping of sections", source=str(path))
    for section, values in data.items():
        settings = _apply(settings, str(section), values or {}, source=str(path))
    return settings
