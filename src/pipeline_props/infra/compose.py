"""docker-compose.test.yml for teams that prefer compose: the local backend's services on its ports."""

from __future__ import annotations

from pathlib import Path

from pipeline_props.config import Settings, load_settings

__all__ = ["COMPOSE_FILE", "write_compose_file"]

COMPOSE_FILE = """\
# docker-compose.test.yml written by `pipeline-props services compose`, for teams that prefer
# compose: the same services the local backend runs, on the same ports. Then run with
# E2E_BACKEND=external E2E_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{kafka_port}
# E2E_POSTGRES_DSN="host=127.0.0.1 port={postgres_port} user=postgres password=postgres dbname=postgres"
services:
  kafka:
    image: apache/kafka:4.1.1
    ports: ["{kafka_port}:{kafka_port}"]
    environment:
      KAFKA_NODE_ID: 1
      KAFKA_PROCESS_ROLES: broker,controller
      KAFKA_LISTENERS: PLAINTEXT://:{kafka_port},CONTROLLER://:9093
      KAFKA_ADVERTISED_LISTENERS: PLAINTEXT://127.0.0.1:{kafka_port}
      KAFKA_CONTROLLER_LISTENER_NAMES: CONTROLLER
      KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka:9093
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: 1
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: 1
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: 1
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false"
  postgres:
    image: postgres:15
    ports: ["{postgres_port}:5432"]
    environment:
      POSTGRES_PASSWORD: postgres
"""


def write_compose_file(path: Path, settings: Settings | None = None) -> Path:
    """Write docker-compose.test.yml with the configured ports."""
    infra = (settings or load_settings()).infrastructure
    path.write_text(COMPOSE_FILE.format(kafka_port=infra.kafka_port, postgres_port=infra.postgres_port))
    return path
