"""``director.*``: the narrated chapters of a scenario."""

from typing import Any

from events.envelope import Payload


class ChapterStarted(Payload):
    TYPE = "director.chapter_started"
    scenario: str
    index: int  # 0-based position in the scenario; shown to people as index + 1 of total
    total: int
    chapter: str
    title: str
    narration: str
    advance: str = ""
    timeout_s: float | None = None
    # the incident stages the chapter tells (injection, detection, remediation, verification): the
    # console shows their facts from the log and highlights them; optional, so older runs still read
    about: list[str] = []


class ChapterFinished(Payload):
    TYPE = "director.chapter_finished"
    scenario: str
    index: int
    chapter: str
    reason: str


class ScenarioRestarted(Payload):
    TYPE = "director.scenario_restarted"
    scenario: str


class ActionTaken(Payload):
    """One of a chapter's entry actions done: ``action`` is its position in the chapter's
    ``on_enter``, ``kind`` its name (``inject``, ``revert_all``, ``finish``), ``result`` what came
    of it (``ok``, and ``fault_id`` or ``error``). A restarted director redoes the entry actions of
    the chapter it resumes that have no such record, and only those."""

    TYPE = "director.action_taken"
    scenario: str
    index: int
    action: int
    kind: str
    result: dict[str, Any] = {}
