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
from subjects.contract.observer import Invariant, Observer, Violation
from subjects.contract.provisioner import ComposeProject, Deployment, HealthCheck, LocalProcess, Provisioner, Site
from subjects.contract.subject import Catalogue, FaultInfo, InvariantInfo, Subject, ToolInfo
from subjects.contract.toolbox import NoArgs, Playbook, Tool, Toolbox, ToolCall, neutral_summary
from subjects.contract.workload import StatsSink, Workload

__all__ = [
    "Catalogue",
    "Cell",
    "ComposeProject",
    "Deployment",
    "DetailsReader",
    "FaultInfo",
    "HealthCheck",
    "Invariant",
    "InvariantInfo",
    "LocalProcess",
    "NeutralRows",
    "NoArgs",
    "Observer",
    "Picture",
    "Playbook",
    "Provisioner",
    "RefusedError",
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
    "fmt_duration",
    "neutral_summary",
    "status_cell",
]
