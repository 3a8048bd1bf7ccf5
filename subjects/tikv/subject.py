"""TiKV as a plug-in subject (entry point ``tikv`` in ``operator_lab.subjects``)."""

from __future__ import annotations

from subjects.contract import Roles, Subject
from subjects.tikv.console_rows import TiKVRows
from subjects.tikv.fault_kit import TiKVFaultKit
from subjects.tikv.faults import FAULT_TYPES
from subjects.tikv.invariants import INVARIANT_TYPES
from subjects.tikv.observer import TiKVObserver
from subjects.tikv.provisioner import TiKVProvisioner
from subjects.tikv.settings import SUBJECT_NAME
from subjects.tikv.toolbox import TiKVToolbox
from subjects.tikv.tools import TOOL_TYPES
from subjects.tikv.workload import TiKVWorkload


class TiKVSubject(Subject):
    name = SUBJECT_NAME
    description = ("A TiKV cluster (PD + three stores) under Docker Compose (profile tikv), or any cluster at "
                   "OPLAB_TIKV_PD_URL: PD-aware observation, container faults, a raw-KV prober.")
    roles = Roles(observer=TiKVObserver, toolbox=TiKVToolbox, fault_kit=TiKVFaultKit,
                  workload=TiKVWorkload, provisioner=TiKVProvisioner, console_rows=TiKVRows)
    fault_types, invariant_types, tool_types = FAULT_TYPES, INVARIANT_TYPES, TOOL_TYPES
