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
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from subjects.contract import Subject

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


def _load(ep: EntryPoint) -> Subject:
    obj = ep.load()
    subject = obj() if isinstance(obj, type) and issubclass(obj, Subject) else obj
    if not isinstance(subject, Subject):
        raise TypeError(f"{ep.value} is a {type(obj).__name__}, not an operator_lab Subject")
    if subject.name != ep.name:
        raise ValueError(f"{ep.value} is subject {subject.name!r} but is registered as {ep.name!r}")
    return subject


def _package(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.value.split(":", 1)[0].split(".", 1)[0]


def discover() -> Registry:
    """Every registered subject (loaded), and the ones that failed to load."""
    subjects: dict[str, Subject] = {}
    broken: list[BrokenSubject] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution found twice on the path
            continue
        seen.add(ep.name)
        try:
            subjects[ep.name] = _load(ep)
        except Exception as exc:  # a user's package must never take the lab down with it
            broken.append(BrokenSubject(ep.name, _package(ep), ep.value, f"{type(exc).__name__}: {exc}"))
    return Registry(subjects, broken)


@functools.cache
def registry() -> Registry:
    """The registry of this process (discovered once)."""
    return discover()


def load_subject(name: str | None = None) -> Subject:
    """The subject called ``name`` (default: ``OPLAB_SUBJECT``, else the rate limiter).

    Raises :class:`UnknownSubject` with the known names."""
    return registry().get(name or SubjectSettings().subject)
