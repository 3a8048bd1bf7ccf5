"""The contract between the lab and a subject under test: one role per service.

Services know subjects only through these types (see :mod:`subjects.contract.subject`
for the roles and who gets which). A subject package implements them and registers
its :class:`Subject` under the entry-point group ``operator_lab.subjects``.

The fault kit's types (``Fault``, ``FaultKit``, ``Injection``) are deliberately not
re-exported here: import them from :mod:`subjects.contract.fault_kit`, which only the
chaos service and subject packages do (an import-linter contract keeps the agent out).
"""

from subjects.contract.console_rows import Cell, NeutralRows, Picture, Row, Tone, ago, fmt_duration, status_cell
from subjects.contract.details import DetailsReader
from subjects.contract.errors import RefusedError, SubjectError
from subjects.contract.observer import Invariant, Observer, Violation, observe_within
from subjects.contract.provisioner import ComposeProject, Deployment, HealthCheck, LocalProcess, Provisioner, Site
from subjects.contract.subject import Catalogue, FaultInfo, InvariantInfo, Roles, Subject, ToolInfo
from subjects.contract.toolbox import (
    Arguments,
    ListedToolbox,
    NoArgs,
    Playbook,
    Tool,
    Toolbox,
    ToolCall,
    call_on,
    diagnose_with,
    entity_of,
    escalate,
    finding,
    neutral_summary,
)
from subjects.contract.workload import StatsSink, Workload

__all__ = [
    "Arguments",
    "Catalogue",
    "Cell",
    "ComposeProject",
    "Deployment",
    "DetailsReader",
    "FaultInfo",
    "HealthCheck",
    "Invariant",
    "InvariantInfo",
    "ListedToolbox",
    "LocalProcess",
    "NeutralRows",
    "NoArgs",
    "Observer",
    "Picture",
    "Playbook",
    "Provisioner",
    "RefusedError",
    "Roles",
    "Row",
    "Site",
    "StatsSink",
    "Subject",
    "SubjectError",
    "Tone",
    "Tool",
    "ToolCall",
    "ToolInfo",
    "Toolbox",
    "Violation",
    "Workload",
    "ago",
    "call_on",
    "diagnose_with",
    "entity_of",
    "escalate",
    "finding",
    "fmt_duration",
    "neutral_summary",
    "observe_within",
    "status_cell",
]
