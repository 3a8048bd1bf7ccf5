"""A run's report (``oplab report RUN``) as a :class:`~oplab.reports.document.Document`, from its
:class:`~oplab.reports.run_facts.RunFacts`: what ran and how it ended, a timeline chart of the
workload with the incident's moments marked, the incident's moments, each ticket's story, the
operator's transcript and the trial's score. Pure: no I/O, no clock.
"""

from __future__ import annotations

from oplab.reports.charts import Marker, MarkerKind, Rates, timeline_chart
from oplab.reports.document import Block, Bullets, Document, Figure, Heading, Note, Paragraph, Table
from oplab.reports.run_facts import RunFacts, TicketStory, rates
from oplab.reports.transcript import Session, Step
from projections.incident import Moment
from projections.scores import TrialScore
from projections.text import abridge, secs

CHART_MOMENTS: dict[str, MarkerKind] = {"injected": "injected", "reverted": "reverted", "opened": "opened",
                                        "action": "action", "cleared": "cleared", "resolved": "resolved",
                                        "escalated": "escalated"}
STEP_LABEL = {"prompt": "ticket as the model saw it", "model": "model", "call": "tool call", "result": "result",
              "note": "agent"}


def run_document(facts: RunFacts) -> Document:
    """The whole report of one run."""
    score = facts.score
    fault = (score.fault if score else None) or facts.requested_fault or "no fault"
    doc = Document(title=f"Run {facts.run}",
                   subtitle=f"{fault} on {facts.subject or 'an unknown subject'}"
                            + (f" · scenario {facts.scenario}" if facts.scenario else "")
                            + f" · {facts.first_at:%Y-%m-%d %H:%M:%S} UTC · {facts.events} events")
    doc.add(*_overview(facts))
    doc.add(Heading("Timeline"), *_timeline(facts))
    doc.add(Heading("Tickets"), *_tickets(facts))
    doc.add(Heading("Agent transcript"), *_transcript(facts))
    doc.add(Heading("Score"), *_score(score))
    return doc


def _overview(facts: RunFacts) -> list[Paragraph | Table | Note]:
    score = facts.score
    duration = (facts.last_at - facts.first_at).total_seconds()
    rows: list[list[str]] = [
        ["outcome", facts.outcome or "not finished (no run.finished in the log)"],
        ["verdict", f"{score.verdict}" + (f": {score.failure}" if score.failure else "") if score else "-"],
        ["fault", _fault_line(facts)],
        ["ticket", (score.ticket or "none") if score else "-"],
        ["time to detect (TTD)", secs(score.ttd_s) if score else "-"],
        ["time to mitigate (TTM)", secs(score.ttm_s) if score else "-"],
        ["resolution", score.resolution if score else "-"],
        ["operator", _operator(score, facts)],
        ["duration", f"{duration:.1f} s"],
    ]
    return [Table(["", ""], rows)]


def _fault_line(facts: RunFacts) -> str:
    injected = next((i for i in facts.incidents if i.fault_id is not None), None)
    if injected is None:
        requested = facts.requested_fault
        why = facts.score.failure if facts.score and facts.score.failure else "never injected"
        return f"{requested or 'none'}: {why}"
    text = f"{injected.fault_kind} on {injected.target} at {injected.origin:%H:%M:%S}"
    if injected.reverted_at is not None:
        text += f", reverted ({injected.revert_reason}) at {facts.stamp(injected.reverted_at)}"
    return text + (" · control trial (nothing is broken)" if facts.score and facts.score.control else "")


def _operator(score: TrialScore | None, facts: RunFacts) -> str:
    policy = (score.policy if score else None) or next((s.policy for s in facts.sessions), None)
    model = (score.model if score else None) or next((s.model for s in facts.sessions if s.model), None)
    if policy is None:
        return "no operator session"
    return policy + (f" ({model})" if model else "")


def chart_markers(facts: RunFacts) -> list[Marker]:
    """The moments the timeline chart marks: injections, tickets opened, actions, clears,
    resolutions, escalations and reverts, timed from the report's origin."""
    markers: list[Marker] = []
    for incident in facts.incidents:
        for moment in incident.timeline():
            kind = CHART_MOMENTS.get(moment.kind)
            if kind is None:
                continue
            if kind == "action" and moment.ok is False:
                kind = "action_failed"
            markers.append(Marker(facts.offset_s(moment.at), f"{facts.stamp(moment.at)} {_marker_text(moment)}",
                                  kind))
    return markers


def fault_spans(facts: RunFacts) -> list[tuple[float, float, str]]:
    """While each fault was in effect: from its injection to its violation clearing or its revert,
    whichever came first (the end of the log when neither did)."""
    spans = []
    for incident in facts.incidents:
        if incident.fault_id is None:
            continue
        ends = [at for at in (incident.cleared_at, incident.reverted_at) if at is not None]
        end = min(ends) if ends else facts.last_at
        spans.append((facts.offset_s(incident.origin), facts.offset_s(end), "fault in effect"))
    return spans


def _marker_text(moment: Moment) -> str:
    text = moment.text if moment.kind != "opened" else moment.short
    return abridge(text, 60)


def _timeline(facts: RunFacts) -> list[Figure | Note | Table | Paragraph]:
    out: list[Figure | Note | Table | Paragraph] = []
    axis = "seconds from the fault's injection" if facts.injected else "seconds from the run's first event"
    if facts.workload:
        series = [Rates(facts.offset_s(at), ok, rejected, errors) for at, ok, rejected, errors in rates(facts.workload)]
        out.append(Figure("timeline", timeline_chart(series, chart_markers(facts), x_label=axis,
                                                     spans=fault_spans(facts)),
                          "Workload ok / rejected / error rates per second (over the last second), with the "
                          "incident's moments marked"))
    else:
        out.append(Note("This run recorded no workload statistics (no workload.stats events): there is no "
                        "workload chart."))
    if not facts.injected:
        why = facts.score.failure if facts.score and facts.score.failure else "no fault was injected"
        out.append(Note(f"The fault was never injected: {why}. Times are from the run's first event."))
    moments = [(m, i) for i in facts.incidents for m in i.timeline()]
    if moments:
        out.append(Table(["when", "stage", "what"],
                         [[facts.stamp(m.at), m.stage, m.text] for m, _ in sorted(moments, key=lambda x: x[0].at)]))
    else:
        out.append(Paragraph("No incident: no fault was injected and no ticket was opened."))
    return out


def _tickets(facts: RunFacts) -> list[Heading | Table | Paragraph | Block]:
    if not facts.tickets:
        control = facts.score is not None and facts.score.control
        return [Paragraph("No ticket was opened" + (" - as it should be in a control trial." if control else "."))]
    incident_ticket = facts.score.ticket if facts.score else None
    out: list[Heading | Table | Paragraph | Block] = []
    for story in facts.tickets:
        out.extend(_story(facts, story, story.ticket_id == incident_ticket))
    return out


def _story(facts: RunFacts, story: TicketStory, scored: bool) -> list[Heading | Table | Paragraph | Block]:
    title = f"{story.ticket_id}: {story.invariant} on {story.entity} ({story.status})"
    rows = [[facts.stamp(line.at), line.what + ("" if line.ok is not False else " ✗"), line.detail]
            for line in story.lines]
    out: list[Heading | Table | Paragraph | Block] = [Heading(title, 3)]
    if scored:
        out.append(Paragraph("The incident ticket: the first opened after the injection, the one the score judges."))
    out.append(Table(["when", "what", "detail"], rows))
    return out


def _transcript(facts: RunFacts) -> list[Heading | Paragraph | Block | Bullets]:
    if not facts.sessions:
        return [Paragraph("No operator session: no agent took a ticket in this run.")]
    out: list[Heading | Paragraph | Block | Bullets] = []
    for session in facts.sessions:
        out.extend(_session(facts, session))
    return out


def _session(facts: RunFacts, session: Session) -> list[Heading | Paragraph | Block | Bullets]:
    who = session.policy + (f" · {session.model}" if session.model else "")
    out: list[Heading | Paragraph | Block | Bullets] = [
        Heading(f"{session.ticket_id} · {session.agent} ({who})", 3)]
    ending = f"ended {session.outcome}" if session.outcome else "did not finish in the log"
    figures = f"{session.turns} model turn(s), {session.tokens} tokens, ${session.cost_usd:.4f}" \
        if session.uses_model else f"{sum(1 for s in session.steps if s.kind == 'call')} tool call(s)"
    out.append(Paragraph(f"Session started {facts.stamp(session.started_at)}; {figures}; {ending}"
                         + (f": {session.reason}" if session.reason else ".")))
    for step in session.steps:
        tone = {"model": "model", "call": "call"}.get(step.kind, "error" if step.ok is False else "")
        out.append(Block(step.text, _step_label(facts, step), tone))
    return out


def _step_label(facts: RunFacts, step: Step) -> str:
    label = STEP_LABEL[step.kind]
    if step.kind == "result":
        label += " ok" if step.ok else " FAILED"
    meta = f" · {step.meta}" if step.meta else ""
    return f"{facts.stamp(step.at)} {label}{meta}"


def _score(score: TrialScore | None) -> list[Table | Paragraph]:
    if score is None:
        return [Paragraph("Not scored.")]
    rows = [
        ["verdict", score.verdict, "what the trial comes to (projections/scores.py)"],
        ["success", "yes" if score.success else "no", score.failure or ""],
        ["injected", _yes(score.injected), "a chaos.fault_injected is in the log"],
        ["control", _yes(score.control), "a legitimate burst: success is taking no mutating action"],
        ["detected", _yes(score.detected), "a ticket opened at or after the injection"],
        ["TTD", secs(score.ttd_s), "ticket opened - fault injected"],
        ["mitigated", _yes(score.mitigated), "the violation cleared after a successful mutating action"],
        ["TTM", secs(score.ttm_s), "violation cleared - ticket opened (the clear at or after the first successful "
                                   "mutating action began, with no changing revert of the fault before it)"],
        ["resolution", score.resolution, "how the incident ticket ended"],
        ["steps", str(score.steps), "tool calls and actions"],
        ["tool errors", str(score.tool_errors), "failed tool results and actions"],
        ["mutating actions", str(score.mutating_actions), "after the injection"],
        ["unsafe actions", str(score.unsafe_actions), "on something that was not broken"],
        ["tokens", str(score.tokens), "model tokens over the run"],
        ["cost", f"${score.cost_usd:.4f}", "model cost over the run"],
    ]
    return [Table(["score", "value", "meaning"], rows)]


def _yes(value: bool) -> str:
    return "yes" if value else "no"
