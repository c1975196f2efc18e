"""Settings precedence (defaults < YAML < environment < overrides) and every error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_props.config import ENV_VARS, load_settings
from pipeline_props.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults_match_the_documented_values() -> None:
    s = load_settings(env={})
    assert (s.test_data.small_dataset_size, s.test_data.medium_dataset_size,
            s.test_data.large_dataset_size) == (100, 1000, 10000)
    assert (s.infrastructure.kafka_port, s.infrastructure.postgres_port) == (29092, 15432)
    assert s.run.log_level == "INFO"
    assert s.run.cleanup_on_failure is True and s.run.preserve_test_data is False
    assert (s.pipeline_stages.min_data_quality_score, s.pipeline_stages.max_duplicate_percentage,
            s.pipeline_stages.max_null_rate) == (0.80, 0.01, 0.05)


def test_precedence_yaml_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("infrastructure:\n  kafka_port: 1111\n  postgres_port: 2222\n"
                   "test_data:\n  small_dataset_size: 5\npipeline_stages:\n  max_null_rate: 0.2\n")
    s = load_settings(cfg, env={"E2E_POSTGRES_PORT": "3333"},
                      overrides={"test_data": {"small_dataset_size": 7}})
    assert s.infrastructure.kafka_port == 1111  # YAML over default
    assert s.infrastructure.postgres_port == 3333  # env over YAML
    assert s.test_data.small_dataset_size == 7  # override over YAML
    assert s.pipeline_stages.max_null_rate == 0.2


def test_e2e_config_env_var_names_the_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run:\n  log_level: debug\n")
    assert load_settings(env={"E2E_CONFIG": str(cfg)}).run.log_level == "DEBUG"


@pytest.mark.parametrize("var,value,key,expected", [
    ("E2E_KAFKA_PORT", "abc", "kafka_port", "an integer"),
    ("E2E_KAFKA_PORT", "70000", "kafka_port", "a port number 1-65535"),
    ("E2E_SMALL_DATASET_SIZE", "-1", "small_dataset_size", "a non-negative integer"),
    ("E2E_LOG_LEVEL", "LOUD", "log_level", "one of DEBUG, INFO, WARNING, ERROR"),
    ("E2E_CLEANUP_ON_FAILURE", "maybe", "cleanup_on_failure", "a boolean (true/false)"),
    ("E2E_BACKEND", "k8s", "backend", "one of local, external, containers"),
    ("E2E_WAREHOUSE", "oracle", "warehouse", "one of postgres, duckdb"),
])
def test_bad_env_values_name_key_value_expectation_and_source(var, value, key, expected) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={var: value})
    msg = str(info.value)
    assert f"{key!r}" in msg and repr(value) in msg and expected in msg and f"${var}" in msg
    assert info.value.exit_code == 2


def test_every_env_var_is_honoured() -> None:
    samples = {"E2E_BACKEND": "external", "E2E_LOG_LEVEL": "DEBUG", "E2E_WAREHOUSE": "duckdb",
               "E2E_CLEANUP_ON_FAILURE": "false", "E2E_PRESERVE_TEST_DATA": "true",
               "E2E_DBT_MODE": "incremental", "E2E_BATCHES": "3"}
    for var, (section, key) in ENV_VARS.items():
        value = samples.get(var, "4242" if "PORT" in var or "SIZE" in var else "x:1")
        s = load_settings(env={var: value})
        got = getattr(getattr(s, section), key)
        assert str(got).lower() == value.lower(), var


@pytest.mark.parametrize("yaml_text,needle", [
    ("infrastructure:\n  kafka_prot: 1\n", "'infrastructure.kafka_prot' = 1 (from {p}): expected one of the keys"),
    ("infra:\n  kafka_port: 1\n", "'infra'"),
    ("pipeline_stages:\n  min_data_quality_score: 1.5\n", "expected a fraction between 0 and 1"),
    ("test_data: 5\n", "expected a mapping of keys to values"),
    ("- a\n- b\n", "expected a YAML mapping of sections"),
    ("infrastructure: {kafka_port: [1]}\n", "expected an integer"),
])
def test_bad_yaml_names_the_key(tmp_path: Path, yaml_text: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert needle.format(p=cfg) in str(info.value)


def test_missing_and_unparsable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected an existing YAML file"):
        load_settings(tmp_path / "nope.yaml", env={})
    bad = tmp_path / "broken.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="expected valid YAML"):
        load_settings(bad, env={})


def test_redacted_hides_secrets() -> None:
    s = load_settings(env={"E2E_POSTGRES_DSN": "host=x password=hunter2"})
    assert "hunter2" not in str(s.redacted())
