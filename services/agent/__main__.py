from services.agent.bootstrap import build
from services.agent.service import AgentService
from services.runtime import run_service

run_service(AgentService, build)
