"""Starting, probing and stopping the services. Knows no business rule."""

from pipeline_props.infra.compose import write_compose_file
from pipeline_props.infra.manager import InfrastructureManager
from pipeline_props.infra.status import ServiceStatus

__all__ = ["InfrastructureManager", "ServiceStatus", "write_compose_file"]
