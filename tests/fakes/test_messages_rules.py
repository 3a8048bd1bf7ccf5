"""The fake Messages API's request rules (offline): what the real API accepts passes, each documented
way to be refused is refused with the API's own wording."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.messages_rules import check_request, prefill_unsupported, reply_problem

HEADERS = {"anthropic-version": "2023-06-01"}
TOOLS = [{"name": "list_nodes", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
USER = {"role": "user", "content": "Ticket tk-1: node_down on node-2."}


def said(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def answered(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def use(use_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id, "name": "list_nodes", "input": {}}


def result(use_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": use_id, "content": "[]", **extra}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def request(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 1024, "system": "You operate.", "tools": TOOLS,
            "messages": messages, **fields}


VALID = {
    "one user turn": request([USER]),
    "a tool round trip, text after the results": request(
        [USER, said(text("Looking."), use("toolu_1")), answered(result("toolu_1", is_error=True), text("Go on."))]),
    "two tool calls answered in one message, any order": request(
        [USER, said(use("toolu_1"), use("toolu_2")), answered(result("toolu_2"), result("toolu_1"))]),
    "consecutive user turns (combined by the API)": request([USER, USER]),
    "max_tokens 0 (cache pre-warming)": request([USER], max_tokens=0),
    "system as text blocks": request([USER], system=[text("You operate.")]),
    "prefill on a model that supports it": request([USER, said(text("The node"))], model="claude-sonnet-4-5"),
    "an empty final assistant message": request([USER, {"role": "assistant", "content": ""}],
                                                model="claude-sonnet-4-20250514"),
}

INVALID = {
    "no max_tokens": ({"model": "m", "messages": [USER]}, "max_tokens: Field required"),
    "max_tokens not an int": (request([USER], max_tokens=1.5), "max_tokens: Input should be a valid integer"),
    "negative max_tokens": (request([USER], max_tokens=-1), "max_tokens: Input should be greater than or equal"),
    "no messages": (request([]), "messages: at least one message is required"),
    "first turn from the assistant": (request([said(text("Hi")), USER]), 'first message must use the "user" role'),
    "an empty text block": (request([answered(text(""))]),
                            "messages.0.content.0: text content blocks must be non-empty"),
    "a blank string turn": (request([{"role": "user", "content": " \n"}]),
                            "messages.0: text content blocks must contain non-whitespace text"),
    "an empty assistant turn mid-conversation": (
        request([USER, {"role": "assistant", "content": []}, USER]),
        "messages.1: all messages must have non-empty content except for the optional final assistant message"),
    "an unknown block type": (request([answered({"type": "blob"})]), "Input tag 'blob'"),
    "a tool_use in a user turn": (request([answered(use("toolu_1"))]), "can only be in `assistant` messages"),
    "a tool call left unanswered": (
        request([USER, said(use("toolu_1"), use("toolu_2")), answered(result("toolu_1"))]),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2"),
    "text before the tool results": (
        request([USER, said(use("toolu_1")), answered(text("Results:"), result("toolu_1"))]),
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    "a message between the call and its result": (
        request([USER, said(use("toolu_1")), USER, answered(result("toolu_1"))]),
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    "a result for no call": (
        request([USER, said(use("toolu_1")), answered(result("toolu_1"), result("toolu_9"))]),
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"),
    "two results for one call": (
        request([USER, said(use("toolu_1")), answered(result("toolu_1"), result("toolu_1"))]),
        "exactly one `tool_result`"),
    "a tool_use id used twice": (
        request([USER, said(use("toolu_1")), answered(result("toolu_1")), said(use("toolu_1")),
                 answered(result("toolu_1"))]),
        "messages.3.content.0: `tool_use` ids must be unique"),
    "tool blocks without tools": (
        {k: v for k, v in request([USER, said(use("toolu_1")), answered(result("toolu_1"))]).items()
         if k != "tools"}, "must define tools"),
    "a tool name with a space": (request([USER], tools=[{**TOOLS[0], "name": "list nodes"}]),
                                 "tools.0.custom.name: String should match pattern"),
    "a tool name of 65 characters": (request([USER], tools=[{**TOOLS[0], "name": "x" * 65}]),
                                     "String should match pattern"),
    "two tools of one name": (request([USER], tools=TOOLS + TOOLS), "tools: Tool names must be unique."),
    "an input_schema that is not an object schema": (
        request([USER], tools=[{**TOOLS[0], "input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'"),
    "a blank system prompt": (request([USER], system="  "),
                              "system: text content blocks must contain non-whitespace text"),
    "prefill on Sonnet 4.6": (request([USER, said(text("The node"))]),
                              "This model does not support assistant message prefill"),
    "a tool call ending the conversation on Sonnet 4.6": (request([USER, said(use("toolu_1"))]),
                                                          "does not support assistant message prefill"),
    "a prefill ending in whitespace": (request([USER, said(text("The node "))], model="claude-sonnet-4-5"),
                                       "final assistant content cannot end with trailing whitespace"),
}


@pytest.mark.parametrize("body", VALID.values(), ids=list(VALID))
def test_what_the_api_accepts_passes(body: dict[str, Any]) -> None:
    assert check_request(body, HEADERS) is None


@pytest.mark.parametrize(("body", "message"), INVALID.values(), ids=list(INVALID))
def test_what_the_api_refuses_is_refused_in_its_words(body: dict[str, Any], message: str) -> None:
    problem = check_request(body, HEADERS)
    assert problem is not None and message in problem, problem


def test_the_version_header_is_required() -> None:
    assert check_request(request([USER]), {}) == "anthropic-version: header is required"


@pytest.mark.parametrize(("model", "unsupported"), [
    ("claude-sonnet-4-6", True), ("claude-opus-4-6", True), ("claude-opus-4-10", True),
    ("claude-sonnet-4-5-20250929", False), ("claude-sonnet-4-20250514", False), ("claude-opus-4-1-20250805", False),
    ("claude-haiku-4-5", False), ("claude-3-7-sonnet-latest", False)])
def test_prefill_is_refused_from_opus_and_sonnet_4_6_on(model: str, unsupported: bool) -> None:
    assert prefill_unsupported(model) is unsupported


def test_a_scripted_reply_reusing_a_tool_use_id_is_a_script_error() -> None:
    body = request([USER, said(use("toolu_1")), answered(result("toolu_1"))])
    assert reply_problem(body, {"content": [use("toolu_2")]}) is None
    problem = reply_problem(body, {"content": [use("toolu_1")]})
    assert problem is not None and "reuses tool_use id toolu_1" in problem
