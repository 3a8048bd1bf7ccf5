from services.monitor.bootstrap import build
from services.monitor.service import MonitorService
from services.runtime import run_service

run_service(MonitorService, build)
