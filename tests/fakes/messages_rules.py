"""What the real Messages API refuses with ``400 invalid_request_error``, checked by the fake server.

:func:`check_request` returns the first violation as the API words it (``messages.3.content.0: ...``),
or ``None`` for a request the real API would accept. Only documented rules are enforced; each check
names its source:

[API]     Messages API reference, https://platform.claude.com/docs/en/api/messages — the same text
          ships as the docstrings of the ``anthropic`` SDK (``anthropic/types/message_create_params.py``
          and the ``*_param.py`` types; checked against anthropic 2.13.0).
[OLDAPI]  The same reference before the 2025 rewrite (e.g. anthropic-sdk-python 0.3x,
          ``message_create_params.py``): "The first message must always use the `user` role."
[TOOLS]   https://platform.claude.com/docs/en/agents-and-tools/tool-use/handle-tool-calls,
          "Important formatting requirements" (formerly docs.claude.com .../implement-tool-use).
[DEFINE]  https://platform.claude.com/docs/en/agents-and-tools/tool-use/define-tools: "`name`: The
          name of the tool. Must match the regex `^[a-zA-Z0-9_-]{1,64}$`."
[ERRORS]  https://platform.claude.com/docs/en/api/errors#prefill-not-supported (linked from [API]).
[SEEN]    The API's own 400 message for the rule, as quoted in public issue threads (cited inline) —
          used where the docs state a rule only through the error it produces.

Deliberately *not* enforced: strict user/assistant alternation — [API]: "Consecutive `user` or
`assistant` turns in your request will be combined into a single turn." — and per-model
``max_tokens`` ceilings (documented per model and changed over time; not pinned here).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# [DEFINE] tool names
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# [SEEN] "messages.1.content.1.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
# (anomalyco/opencode#1279)
TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")

# [API] MessageContentParam: the block types a message may hold (anthropic 2.13.0)
BLOCK_TYPES = {
    "text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use", "tool_result",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
    "container_upload",
}
# [TOOLS] "`user` messages include client content and `tool_result`, while `assistant` messages contain
# AI-generated content and `tool_use`."
ASSISTANT_ONLY = {"tool_use", "thinking", "redacted_thinking", "server_tool_use"}
USER_ONLY = {"tool_result"}
# [API] ToolResultBlockParam.content: str or a list of these
TOOL_RESULT_CONTENT_TYPES = {"text", "image", "document", "search_result", "tool_reference", "browser_state"}
MAX_MESSAGES = 100_000  # [API] "There is a limit of 100,000 messages in a single request."


def check_request(body: Any, headers: dict[str, str] | None = None) -> str | None:
    """The first reason the real API would refuse this ``POST /v1/messages``, or ``None``."""
    # [API] every request carries the `anthropic-version` header (the SDK sets it); without it:
    # "anthropic-version: header is required"
    if headers is not None and not any(k.lower() == "anthropic-version" for k in headers):
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "body: Input should be an object"
    # [API] MessageCreateParams: model, max_tokens and messages are Required
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            return f"{required}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a non-empty string"
    max_tokens = body["max_tokens"]
    # [API] max_tokens: int. "Set to `0` to populate the prompt cache without generating a response."
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return "max_tokens: Input should be a valid integer"
    if max_tokens < 0:
        return "max_tokens: Input should be greater than or equal to 0"
    tools_error = _check_tools(body.get("tools"))
    if tools_error:
        return tools_error
    system_error = _check_system(body.get("system"))
    if system_error:
        return system_error
    return _check_messages(body["messages"], str(body["model"]), bool(body.get("tools")))


def _first_problem(field: str, items: list[Any], check: Callable[[int, str, dict[str, Any]], str | None]
                   ) -> str | None:
    """The first problem of the list ``field``, item by item in order: the item at ``i`` is no object
    (``<field>.<i>: Input should be an object``), or ``check(i, "<field>.<i>", item)`` names one."""
    for i, item in enumerate(items):
        where = f"{field}.{i}"
        if not isinstance(item, dict):
            return f"{where}: Input should be an object"
        problem = check(i, where, item)
        if problem:
            return problem
    return None


def _check_tools(tools: Any) -> str | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    names: set[str] = set()  # of the tools checked so far: each must be new

    def check_tool(_: int, where: str, t: dict[str, Any]) -> str | None:
        name = t.get("name")
        if not isinstance(name, str):
            return f"{where}.name: Field required"
        kind = t.get("type")
        if kind in (None, "custom"):
            # [DEFINE] name pattern (the API: "tools.0.custom.name: String should match pattern ...")
            if not TOOL_NAME.match(name):
                return f"{where}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            # [API] ToolParam.input_schema: Required; InputSchema.type: Required[Literal["object"]]
            schema = t.get("input_schema")
            if not isinstance(schema, dict):
                return f"{where}.custom.input_schema: Field required"
            if schema.get("type") != "object":
                return f"{where}.custom.input_schema.type: Input should be 'object'"
            if "description" in t and not isinstance(t["description"], str):
                return f"{where}.custom.description: Input should be a valid string"
        # [SEEN] "tools: Tool names must be unique." (danny-avila/LibreChat#13162)
        if name in names:
            return "tools: Tool names must be unique."
        names.add(name)
        return None

    return _first_problem("tools", tools, check_tool)


def _check_system(system: Any) -> str | None:
    """[API] ``system``: a string or a list of text blocks."""
    if system is None:
        return None
    if isinstance(system, str):
        # [SEEN] "system: text content blocks must contain non-whitespace text" (a " " system prompt)
        if system and not system.strip():
            return "system: text content blocks must contain non-whitespace text"
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or a list of text blocks"
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"system.{j}: Input should be a text block"
        problem = _text_problem(block)
        if problem:
            return f"system.{j}: {problem}"
    return None


def _text_problem(block: dict[str, Any]) -> str | None:
    """[SEEN] "messages: text content blocks must be non-empty" (stackblitz/bolt.new#7426) and
    "text content blocks must contain non-whitespace text" (anomalyco/opencode#3194)."""
    value = block.get("text")
    if not isinstance(value, str):
        return "text: Field required"
    if value == "":
        return "text content blocks must be non-empty"
    if not value.strip():
        return "text content blocks must contain non-whitespace text"
    return None


def _blocks(content: Any) -> list[dict[str, Any]]:
    """[API] "Using a `string` for `content` is shorthand for an array of one content block of type `text`"."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def prefill_unsupported(model: str) -> bool:
    """[ERRORS]/[API]: "On models that don't support prefill, creating a message that ends with a partial
    `assistant` response returns a 400 error" — Claude Opus 4.6 and later, Sonnet 4.6 and later."""
    m = re.match(r"^claude-(opus|sonnet)-(\d+)-(\d{1,2})(?:-|$)", model)  # not claude-sonnet-4-20250514
    return bool(m) and (int(m.group(2)), int(m.group(3))) >= (4, 6)


def _check_messages(messages: Any, model: str, tools_defined: bool) -> str | None:
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:  # [API] "You can specify a single `user`-role message, or ..." — at least one
        return "messages: at least one message is required"
    if len(messages) > MAX_MESSAGES:
        return f"messages: a request holds at most {MAX_MESSAGES} messages"
    last = len(messages) - 1
    tool_use_ids: set[str] = set()  # every tool_use id so far: each must be new (see _check_block)

    def check_message(i: int, where: str, m: dict[str, Any]) -> str | None:
        role = m.get("role")
        # [API] MessageParam: a user, assistant or (mid-conversation) system message
        if role not in ("user", "assistant", "system"):
            return f"{where}.role: Input should be 'user', 'assistant' or 'system'"
        if "content" not in m:
            return f"{where}.content: Field required"
        content = m["content"]
        if not isinstance(content, (str, list)):
            return f"{where}.content: Input should be a valid string or a list of content blocks"
        if i == 0 and role != "user":
            # [OLDAPI] "The first message must always use the `user` role."
            # [SEEN] 'messages: first message must use the "user" role' (lobehub/lobehub#1601)
            return 'messages: first message must use the "user" role'
        final_assistant = i == last and role == "assistant"
        if not final_assistant and (content == "" or content == []):
            # [SEEN] "messages.0: all messages must have non-empty content except for the optional final
            # assistant message" (anthropics/claude-code#3196)
            return f"{where}: all messages must have non-empty content except for the optional final assistant message"
        blocks = _blocks(content)
        for j, b in enumerate(blocks):
            problem = _check_block(b, role, final_assistant and j == len(blocks) - 1, tool_use_ids)
            if problem:
                return f"{where}.content.{j}: {problem}" if isinstance(content, list) else f"{where}: {problem}"
        if role == "system" and any(b.get("type") != "text" for b in blocks):
            return f"{where}.content: a system message holds text blocks only"  # [API] SystemMessageParam
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if (uses or results) and not tools_defined:
            # [SEEN] "Requests which include tool_use or tool_result blocks must define tools."
            # (anthropics/anthropic-sdk-python#494)
            return "Requests which include `tool_use` or `tool_result` blocks must define tools."
        if results:
            problem = _check_results(messages, i, blocks)
            if problem:
                return problem
        if uses and i < last:
            problem = _check_answered(messages, i, uses)
            if problem:
                return problem
        if final_assistant:
            if prefill_unsupported(model):
                # [ERRORS] prefill not supported; [SEEN] "This model does not support assistant message
                # prefill. The conversation must end with a user message." (anomalyco/opencode#17982)
                return ("This model does not support assistant message prefill. "
                        "The conversation must end with a user message.")
            tail = blocks[-1] if blocks else None
            if tail is not None and tail.get("type") == "text" and str(tail.get("text", "")) != \
                    str(tail.get("text", "")).rstrip():
                # [SEEN] "messages: final assistant content cannot end with trailing whitespace"
                # (tailcallhq/forgecode#1872); prefill docs: "The prefill content cannot end with
                # trailing whitespace."
                return "messages: final assistant content cannot end with trailing whitespace"
        return None

    return _first_problem("messages", messages, check_message)


def _check_block(b: Any, role: str, final_block: bool, tool_use_ids: set[str]) -> str | None:
    if not isinstance(b, dict) or not isinstance(b.get("type"), str):
        return "Input should be a content block object with a `type`"
    kind = b["type"]
    if kind not in BLOCK_TYPES:
        return f"Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if role == "user" and kind in ASSISTANT_ONLY:
        return f"`{kind}` blocks can only be in `assistant` messages"  # [TOOLS]
    if role == "assistant" and kind in USER_ONLY:
        return f"`{kind}` blocks can only be in `user` messages"  # [TOOLS]
    if kind == "text":
        problem = _text_problem(b)
        # the optional final assistant message may be empty; its whitespace is judged by the
        # trailing-whitespace rule instead
        if problem and not (final_block and problem.startswith("text content blocks")):
            return problem
    elif kind == "tool_use":
        # [API] ToolUseBlockParam: id, name, input (an object) are Required
        use_id = b.get("id")
        if not isinstance(use_id, str) or not TOOL_USE_ID.match(use_id):
            return "tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if not isinstance(b.get("name"), str) or not b["name"]:
            return "tool_use.name: Field required"
        if not isinstance(b.get("input"), dict):
            return "tool_use.input: Input should be a valid dictionary"
        if use_id in tool_use_ids:
            # [SEEN] "messages.1.content.1: `tool_use` ids must be unique" (anthropics/claude-code#21317)
            return "`tool_use` ids must be unique"
        tool_use_ids.add(use_id)
    elif kind == "tool_result":
        # [API] ToolResultBlockParam: tool_use_id Required; content str or list; is_error bool
        if not isinstance(b.get("tool_use_id"), str):
            return "tool_result.tool_use_id: Field required"
        if "is_error" in b and not isinstance(b["is_error"], bool):
            return "tool_result.is_error: Input should be a valid boolean"
        inner = b.get("content")
        if inner is not None and not isinstance(inner, (str, list)):
            return "tool_result.content: Input should be a valid string or a list of content blocks"
        if isinstance(inner, list):
            for k, sub in enumerate(inner):
                # [TOOLS] "These content blocks can use the `text`, `image`, `document`, or `search_result` types."
                if not isinstance(sub, dict) or sub.get("type") not in TOOL_RESULT_CONTENT_TYPES:
                    return f"tool_result.content.{k}: Input tag does not match any of the expected tags"
                if sub["type"] == "text":
                    problem = _text_problem(sub)
                    if problem:
                        return f"tool_result.content.{k}: {problem}"
    return None


def _check_results(messages: list[dict[str, Any]], i: int, blocks: list[dict[str, Any]]) -> str | None:
    """A user message with ``tool_result`` blocks answers the assistant message just before it.

    [TOOLS] "Tool result blocks must immediately follow their corresponding tool use blocks in the
    message history. You cannot include any messages between the assistant's tool use message and the
    user's tool result message." and "In the user message containing tool results, the tool_result
    blocks must come FIRST in the content array. Any text must come AFTER all tool results."
    """
    seen_other = False
    for j, b in enumerate(blocks):
        if b.get("type") == "tool_result":
            if seen_other:
                return (f"messages.{i}.content.{j}: `tool_result` blocks must come first in the content array, "
                        "before any other content")
        else:
            seen_other = True
    prev = messages[i - 1] if i > 0 else None
    prev_ids = []
    if isinstance(prev, dict) and prev.get("role") == "assistant" and isinstance(prev.get("content"), list):
        prev_ids = [b.get("id") for b in prev["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
    answered: set[str] = set()
    for j, b in enumerate(blocks):
        if b.get("type") != "tool_result":
            continue
        use_id = b["tool_use_id"]
        if use_id not in prev_ids:
            # [SEEN] "messages.12.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_...
            # Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            # (router-for-me/CLIProxyAPI#497)
            return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
        if use_id in answered:
            return (f"messages.{i}.content.{j}: each `tool_use` block must have exactly one `tool_result` "
                    f"block; found several for {use_id}")
        answered.add(use_id)
    return None


def _check_answered(messages: list[dict[str, Any]], i: int, uses: list[dict[str, Any]]) -> str | None:
    """Every ``tool_use`` of a (non-final) assistant message is answered at the start of the next message.

    [TOOLS] as in :func:`_check_results`; [SEEN] "messages.8: `tool_use` ids were found without
    `tool_result` blocks immediately after: toolu_... Each `tool_use` block must have a corresponding
    `tool_result` block in the next message." (anthropics/claude-code#3632) and "Did not find 1
    tool_result block(s) at the beginning of this message. Messages following tool_use blocks must begin
    with a matching number of tool_result blocks." (anthropics/anthropic-sdk-typescript#653)
    """
    nxt = messages[i + 1]
    answered: set[str] = set()
    if isinstance(nxt, dict) and nxt.get("role") == "user" and isinstance(nxt.get("content"), (str, list)):
        for b in _blocks(nxt["content"]):
            if not isinstance(b, dict) or b.get("type") != "tool_result":
                break  # only the leading tool_result blocks count
            answered.add(b.get("tool_use_id"))
    missing = [u["id"] for u in uses if u["id"] not in answered]
    if missing:
        return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message.")
    return None


def reply_problem(body: dict[str, Any], reply_body: dict[str, Any]) -> str | None:
    """Why a *scripted* reply could never come from the real API, given the request it answers
    (a bug in a test's script, not in the client): the API generates a fresh ``tool_use`` id for every
    call, so a reply reusing an id already in the conversation (the same ``tool_use(...)`` object
    scripted for two turns) or twice in itself is a script error."""
    used = {b.get("id") for m in body.get("messages", []) if isinstance(m, dict) and isinstance(m.get("content"), list)
            for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"}
    for b in reply_body.get("content", []):
        if b.get("type") == "tool_use":
            if b.get("id") in used:
                return (f"scripted reply reuses tool_use id {b.get('id')} ({b.get('name')}); script a fresh "
                        "reply per turn (the real API never repeats an id)")
            used.add(b.get("id"))
    return None
