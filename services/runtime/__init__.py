"""What every service process shares: settings, logging, lifecycle."""

from events.structured_logging import configure_logging
from services.runtime.lifecycle import ServiceProcess, SubjectService, run_service
from services.runtime.settings import ServiceSettings

__all__ = ["ServiceProcess", "ServiceSettings", "SubjectService", "configure_logging", "run_service"]
