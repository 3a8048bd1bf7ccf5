from services.loadgen.service import LoadgenService
from services.runtime import run_service

run_service(LoadgenService)
