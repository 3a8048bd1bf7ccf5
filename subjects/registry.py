"""Subjects by name, from the ``operator_lab.subjects`` entry-point group.

A subject package declares, in its ``pyproject.toml``::

    [project.entry-points."operator_lab.subjects"]
    toy = "toy_subject.subject:ToySubject"

The entry point's name is the subject's name; its object is a
:class:`~subjects.contract.Subject` class (or instance). Discovery never fails
as a whole: a package whose entry point cannot be loaded (an import error, the
wrong kind of object, a name that disagrees) is kept as a :class:`BrokenSubject`
with the reason, and every other subject stays available.

One subject per run: the launcher and compose set ``OPLAB_SUBJECT`` for every
process of a run (:class:`SubjectSettings`), the director records it in
``run.started``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from subjects.contract import Roles, Subject

ENTRY_POINT_GROUP = "operator_lab.subjects"
DEFAULT_SUBJECT = "ratelimiter"


class SubjectSettings(BaseSettings):
    """Which subject this process serves (``OPLAB_SUBJECT``)."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")
    subject: str = Field(default=DEFAULT_SUBJECT, description="The system under test (see `oplab subjects`)")


class UnknownSubject(ValueError):
    """No registered subject has that name; the message lists the known ones."""


@dataclass(frozen=True)
class BrokenSubject:
    """A registered subject that could not be loaded, and why."""

    name: str
    package: str
    target: str
    error: str


@dataclass(frozen=True)
class Registry:
    subjects: dict[str, Subject]
    broken: list[BrokenSubject]
    packages: dict[str, str]
    """Subject name -> the distribution that registered it."""

    def names(self) -> list[str]:
        return sorted(self.subjects)

    def get(self, name: str) -> Subject:
        subject = self.subjects.get(name)
        if subject is not None:
            return subject
        broken = next((b for b in self.broken if b.name == name), None)
        if broken is not None:
            raise UnknownSubject(f"subject {name!r} (package {broken.package}) cannot be loaded: {broken.error}")
        known = ", ".join(self.names()) or "none"
        raise UnknownSubject(f"unknown subject {name!r}; known: {known}")


ROLE_METHODS = ("observer", "toolbox", "fault_kit", "workload", "provisioner", "console_rows")
"""The methods a subject builds its roles with, from ``roles`` unless it overrides them."""


def _load(ep: EntryPoint) -> Subject:
    obj = ep.load()
    subject = obj() if isinstance(obj, type) and issubclass(obj, Subject) else obj
    if not isinstance(subject, Subject):
        raise TypeError(f"{ep.value} is a {type(obj).__name__}, not an operator_lab Subject")
    if subject.name != ep.name:
        raise ValueError(f"{ep.value} is subject {subject.name!r} but is registered as {ep.name!r}")
    for attribute in ("name", "description"):
        if not isinstance(getattr(subject, attribute, None), str) or not getattr(subject, attribute):
            raise TypeError(f"{ep.value} has no {attribute} (a non-empty string class attribute)")
    # found now, not when a service first asks for its role
    inherited = [role for role in ROLE_METHODS if getattr(type(subject), role) is getattr(Subject, role)]
    if inherited and not isinstance(getattr(subject, "roles", None), Roles):
        raise TypeError(f"{ep.value} has no roles (a Roles class attribute) to build its {', '.join(inherited)}")
    return subject



def _package(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.value.split(":", 1)[0].split(".", 1)[0]


def discover(found: Iterable[EntryPoint] | None = None) -> Registry:
    """Every registered subject (loaded), and the ones that failed to load (``found``: the entry
    points to consider, default: the group's on this Python's path).

    The same distribution found twice on the path counts once; two different packages
    registering one name are a conflict: neither is loaded, and both are named."""
    subjects: dict[str, Subject] = {}
    broken: list[BrokenSubject] = []
    packages: dict[str, str] = {}
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP) if found is None else found:
        found = by_name.setdefault(ep.name, [])
        if all((_package(e), e.value) != (_package(ep), ep.value) for e in found):
            found.append(ep)
    for name in sorted(by_name):
        [ep, *others] = by_name[name]
        if others:
            who = ", ".join(f"{_package(e)} ({e.value})" for e in by_name[name])
            broken.append(BrokenSubject(name, " and ".join(_package(e) for e in by_name[name]), ep.value,
                                        f"registered by several packages: {who}"))
            continue
        packages[name] = _package(ep)
        try:
            subjects[name] = _load(ep)
        except Exception as exc:  # a user's package must never take the lab down with it
            broken.append(BrokenSubject(name, _package(ep), ep.value, f"{type(exc).__name__}: {exc}"))
    return Registry(subjects, broken, packages)


@functools.cache
def registry() -> Registry:
    """The registry of this process (discovered once)."""
    return discover()


def load_subject(name: str | None = None) -> Subject:
    """The subject called ``name`` (default: ``OPLAB_SUBJECT``, else the rate limiter).

    Raises :class:`UnknownSubject` with the known names."""
    return registry().get(name or SubjectSettings().subject)
