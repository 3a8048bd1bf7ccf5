"""``director.*``: the narrated chapters of a scenario."""

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


class ChapterFinished(Payload):
    TYPE = "director.chapter_finished"
    scenario: str
    index: int
    chapter: str
    reason: str


class ScenarioRestarted(Payload):
    TYPE = "director.scenario_restarted"
    scenario: str
