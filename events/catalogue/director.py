"""``director.*``: the narrated chapters of a scenario."""

from typing import Any

from events.envelope import Payload


class DirectorPayload(Payload):
    """Base of all director events: each names the scenario it plays."""

    scenario: str


class ChapterPayload(DirectorPayload):
    """A director event about one chapter: ``index`` is its 0-based position in the scenario (shown
    to people as index + 1 of the total)."""

    index: int


class ChapterStarted(ChapterPayload):
    """The director entered a chapter: recorded before its countdown and entry actions, and again when a restarted
    director resumes it. ``chapter``: its id in the scenario; ``narration``: the text shown (placeholders filled);
    ``advance``: what ends it, in words; ``timeout_s``: its timeout in ``auto`` mode (None interactively, or if
    none)."""

    TYPE = "director.chapter_started"
    total: int
    chapter: str
    title: str
    narration: str
    advance: str = ""
    timeout_s: float | None = None
    # the incident stages the chapter tells (injection, detection, remediation, verification): the
    # console shows their facts from the log and highlights them; optional, so older runs still read
    about: list[str] = []


class ChapterFinished(ChapterPayload):
    """The director left a chapter. ``reason``: ``key`` (a key press), ``condition`` (its ``advance`` event is in the
    log), ``timeout``, or ``fault_lost`` (the fault was lost before detection: the story goes on at its last
    chapter)."""

    TYPE = "director.chapter_finished"
    chapter: str
    reason: str


class ScenarioRestarted(DirectorPayload):
    """Reserved for a scenario played again from its start: no service records it today (a restarted director resumes
    with ``chapter_started``); a timeline that reads one forgets the chapter it was showing."""

    TYPE = "director.scenario_restarted"


class ActionTaken(ChapterPayload):
    """One of a chapter's entry actions done: ``action`` is its position in the chapter's
    ``on_enter``, ``kind`` its name (``inject``, ``revert_all``, ``finish``), ``result`` what came
    of it (``ok``, and ``fault_id`` or ``error``). A restarted director redoes the entry actions of
    the chapter it resumes that have no such record, and only those."""

    TYPE = "director.action_taken"
    action: int
    kind: str
    result: dict[str, Any] = {}
