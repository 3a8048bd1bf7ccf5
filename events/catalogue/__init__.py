"""The event catalogue: one module per domain, one pydantic model per event type.

Types are never renamed silently: a new meaning gets a new type, an
incompatible schema change bumps the payload's ``VERSION`` and adds an
``upcast_v{n}_v{n+1}`` static method (see :mod:`events.upcasting`), so runs
recorded with the old schema stay readable.
"""

from events.catalogue.agent import (
    AgentLlmRequest,
    AgentLlmResponse,
    AgentReplayDiverged,
    AgentSessionFinished,
    AgentSessionStarted,
    AgentThought,
    AgentToolCall,
    AgentToolResult,
)
from events.catalogue.bus import EventRejected
from events.catalogue.campaign import CampaignFinished, CampaignStarted, TrialFinished, TrialStarted
from events.catalogue.chaos import (
    FaultAdopted,
    FaultEffective,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
)
from events.catalogue.director import ActionTaken, ChapterFinished, ChapterStarted, ScenarioRestarted
from events.catalogue.inv import BaselineEstablished, InvariantCleared, InvariantViolated
from events.catalogue.obs import ComponentView, NodeView, ObsSnapshot, Status
from events.catalogue.run import RunFinished, RunStarted
from events.catalogue.svc import ServiceHeartbeat, ServiceStarted, ServiceStopping
from events.catalogue.ticket import (
    TicketActionApproved,
    TicketActionExecuted,
    TicketActionRejected,
    TicketActionRequested,
    TicketClaimed,
    TicketDiagnosed,
    TicketEscalated,
    TicketLeaseRenewed,
    TicketOpened,
    TicketPayload,
    TicketRecurred,
    TicketReopened,
    TicketResolved,
    TicketVerified,
)
from events.catalogue.workload import Counts, NodeStats, OperationStats, WorkloadStats

__all__ = [
    "ActionTaken",
    "AgentLlmRequest",
    "AgentLlmResponse",
    "AgentReplayDiverged",
    "AgentSessionFinished",
    "AgentSessionStarted",
    "AgentThought",
    "AgentToolCall",
    "AgentToolResult",
    "BaselineEstablished",
    "CampaignFinished",
    "CampaignStarted",
    "ChapterFinished",
    "ChapterStarted",
    "ComponentView",
    "Counts",
    "EventRejected",
    "FaultAdopted",
    "FaultEffective",
    "FaultFailed",
    "FaultInjected",
    "FaultRequested",
    "FaultReverted",
    "InvariantCleared",
    "InvariantViolated",
    "NodeStats",
    "NodeView",
    "ObsSnapshot",
    "OperationStats",
    "RunFinished",
    "RunStarted",
    "ScenarioRestarted",
    "ServiceHeartbeat",
    "ServiceStarted",
    "ServiceStopping",
    "Status",
    "TicketActionApproved",
    "TicketActionExecuted",
    "TicketActionRejected",
    "TicketActionRequested",
    "TicketClaimed",
    "TicketDiagnosed",
    "TicketEscalated",
    "TicketLeaseRenewed",
    "TicketOpened",
    "TicketPayload",
    "TicketRecurred",
    "TicketReopened",
    "TicketResolved",
    "TicketVerified",
    "TrialFinished",
    "TrialStarted",
    "WorkloadStats",
]
