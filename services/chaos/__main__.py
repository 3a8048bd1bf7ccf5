from services.chaos.bootstrap import build
from services.chaos.service import ChaosService
from services.runtime import run_service

run_service(ChaosService, build)
