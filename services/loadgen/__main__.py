from services.loadgen.bootstrap import build
from services.loadgen.service import LoadgenService
from services.runtime import run_service

run_service(LoadgenService, build)
