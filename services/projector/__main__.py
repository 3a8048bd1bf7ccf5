from services.projector.bootstrap import build
from services.projector.service import ProjectorService, tune_gc
from services.runtime import run_service

tune_gc()
run_service(ProjectorService, build)
