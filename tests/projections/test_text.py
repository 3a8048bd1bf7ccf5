"""The small formatters every screen and page shares (``projections/text.py``): one spelling each."""

from __future__ import annotations

from projections.text import ABRIDGE_CHARS, ARG_CHARS, abridge, call_text, secs, stamp


def test_a_stamp_is_signed_seconds_from_the_origin_with_two_decimals() -> None:
    assert stamp(0.0) == "t+0.00"
    assert stamp(1.954) == "t+1.95"
    assert stamp(-0.1) == "t-0.10"  # recorded before the origin


def test_seconds_have_two_decimals_and_a_space_and_a_missing_value_says_so() -> None:
    assert secs(0.984) == "0.98 s"
    assert secs(12.0) == "12.00 s"
    assert secs(None) == "-"  # a table's empty cell
    assert secs(None, "n/a") == "n/a"  # a sentence's


def test_abridge_keeps_one_line_of_at_most_limit_characters() -> None:
    assert abridge("short") == "short"
    assert abridge("a\n\n  b\tc") == "a b c"
    cut = abridge("x" * 200)
    assert len(cut) == ABRIDGE_CHARS and cut.endswith("…")
    assert abridge({"é": [1, 2]}) == '{"é":[1,2]}'  # compact JSON, not escaped
    assert abridge("abc", 0) == "…"


def test_a_call_names_its_arguments_abridged_on_a_line_in_full_otherwise() -> None:
    args = {"node": "rl-2", "force": True, "limits": {"key": "v" * 60}}
    line = call_text("set_limits", args)
    assert line == "set_limits(node='rl-2', force=true, limits=" + '{"key":"' + "v" * (ARG_CHARS - 9) + "…)"
    long = call_text("restart_node", {"node": "n" * 200})  # a string is cut with the whole call
    assert len(long) == ABRIDGE_CHARS and long.startswith("restart_node(node='nnn") and long.endswith("…")
    full = call_text("set_limits", args, limit=None)
    assert full == "set_limits(node='rl-2', force=true, limits={\"key\":\"" + "v" * 60 + "\"})"
    assert call_text("restart_node", {"node": "node-1"}) == call_text("restart_node", {"node": "node-1"}, None) \
        == "restart_node(node='node-1')"
