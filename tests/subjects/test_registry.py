"""The registry finds subjects by entry point and never fails as a whole: what cannot be loaded is
named with its package and reason, and the rest stays available."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from subjects.contract import Subject
from subjects.ratelimiter.subject import RateLimiterSubject
from subjects.registry import ENTRY_POINT_GROUP, UnknownSubject, discover, load_subject


class Nameless(RateLimiterSubject):
    name = "nameless"
    description = ""


class Impostor(RateLimiterSubject):
    name = "somebody-else"


class Roleless(Subject):
    name = "roleless"
    description = "declares no roles"


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


RL = "subjects.ratelimiter.subject:RateLimiterSubject"
HERE = "tests.subjects.test_registry"


def test_the_rate_limiter_is_registered_like_any_plugin() -> None:
    subject = load_subject("ratelimiter")
    assert isinstance(subject, Subject) and subject.name == "ratelimiter"
    assert "node_kill" in subject.catalogue().fault_kinds()


def test_every_way_a_plugin_can_be_wrong_is_named_and_the_others_load() -> None:
    found = discover([
        ep("ratelimiter", RL),
        ep("missing", "no_such_package.subject:Subject"),
        ep("nameless", f"{HERE}:Nameless"),
        ep("impostor", f"{HERE}:Impostor"),
        ep("notasubject", "json:dumps"),
        ep("roleless", f"{HERE}:Roleless"),
    ])
    assert found.names() == ["ratelimiter"]
    reasons = {b.name: b.error for b in found.broken}
    assert "ModuleNotFoundError" in reasons["missing"] and "no_such_package" in reasons["missing"]
    assert "has no description" in reasons["nameless"]
    assert "is subject 'somebody-else' but is registered as 'impostor'" in reasons["impostor"]
    assert "not an operator_lab Subject" in reasons["notasubject"]
    assert "has no roles (a Roles class attribute) to build its observer, toolbox" in reasons["roleless"]
    assert {b.package for b in found.broken if b.name == "missing"} == {"no_such_package"}


def test_two_packages_registering_one_name_are_a_conflict_not_a_coin_toss() -> None:
    found = discover([ep("ratelimiter", RL), ep("ratelimiter", f"{HERE}:Nameless")])
    assert found.names() == []
    [conflict] = found.broken
    assert "registered by several packages" in conflict.error and HERE in conflict.error


def test_the_same_package_found_twice_counts_once() -> None:
    assert discover([ep("ratelimiter", RL), ep("ratelimiter", RL)]).names() == ["ratelimiter"]


def test_an_unknown_or_broken_name_is_a_clear_error() -> None:
    found = discover([ep("ratelimiter", RL), ep("missing", "no_such_package.subject:Subject")])
    with pytest.raises(UnknownSubject, match="unknown subject 'nosuch'; known: ratelimiter"):
        found.get("nosuch")
    with pytest.raises(UnknownSubject, match=r"subject 'missing' \(package no_such_package\) cannot be loaded"):
        found.get("missing")
