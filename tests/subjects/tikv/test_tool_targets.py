"""What a TiKV tool call acts on (``Tool.acts_on``): store tools the store (the name ``store_*``
faults target), ``start_pd_member`` the member (``pd_leader_kill`` targets the leader by its member
name); the tools acting on PD as a whole name nothing. No I/O: building the toolbox and naming a
call's target touch nothing."""

from __future__ import annotations

from subjects.tikv.settings import TiKVSettings
from subjects.tikv.toolbox import TiKVToolbox


def test_store_and_member_tools_name_what_they_act_on_and_pd_wide_tools_name_nothing() -> None:
    toolbox = TiKVToolbox(TiKVSettings(control="supervisor", supervisor_url="http://127.0.0.1:1/RPC2"))
    calls = {"start_store": {"store": "tikv2"}, "unpause_store": {"store": "tikv2"},
             "reconnect_store": {"store": "tikv2"}, "set_store_up": {"store": "tikv2"},
             "start_pd_member": {"member": "pd1"}, "transfer_pd_leader": {"member": "pd2"},
             "remove_tombstones": {}}
    named: dict[str, str | None] = {}
    for name, args in calls.items():
        tool = toolbox.tool(name)
        assert tool is not None and tool.mutating
        named[name] = tool.target_of(args)
    assert named == {"start_store": "tikv2", "unpause_store": "tikv2", "reconnect_store": "tikv2",
                     "set_store_up": "tikv2", "start_pd_member": "pd1", "transfer_pd_leader": None,
                     "remove_tombstones": None}
    assert {t.name for t in toolbox.tools() if t.mutating} == set(calls)
