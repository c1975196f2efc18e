"""Starting, probing and stopping the services. Knows no business rule."""

from pipeline_props.infra.manager import InfrastructureManager, ServiceStatus, write_compose_file

__all__ = ["InfrastructureManager", "ServiceStatus", "write_compose_file"]
