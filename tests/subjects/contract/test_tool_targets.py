"""What a tool call acts on, by default: the argument its ``target_arg`` declares, for a mutating tool
only; nothing for arguments that do not validate."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from subjects.contract import Arguments, Tool


class NodeArgs(Arguments):
    node: str


class Restart(Tool):
    name = "restart"
    description = "restart a node"
    args_model = NodeArgs
    mutating = True
    target_arg = "node"

    async def run(self, args: BaseModel) -> Any:
        return {}


class Status(Restart):
    mutating = False


class Undeclared(Restart):
    target_arg = None


def test_a_mutating_tool_acts_on_the_argument_it_declares() -> None:
    assert Restart().target_of({"node": "n1"}) == "n1"


def test_a_read_only_tool_or_one_that_declares_no_argument_names_nothing() -> None:
    assert Status().target_of({"node": "n1"}) is None
    assert Undeclared().target_of({"node": "n1"}) is None


def test_arguments_that_do_not_validate_name_nothing() -> None:
    assert Restart().target_of({"node": "n1", "bogus": 1}) is None
    assert Restart().target_of({}) is None


def test_a_target_arg_that_is_no_argument_is_refused_when_the_tool_is_declared() -> None:
    with pytest.raises(TypeError, match="'nodes' is not an argument of NodeArgs"):
        class Misspelt(Restart):  # declaring it is the act under test
            target_arg = "nodes"
