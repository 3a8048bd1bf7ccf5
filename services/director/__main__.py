from services.director.bootstrap import build
from services.director.service import DirectorService
from services.runtime import run_service

run_service(DirectorService, build)
