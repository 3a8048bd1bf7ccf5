"""``oplab subjects``: every registered subject's catalogue as plain documents (for people and ``--json``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from subjects.registry import registry


def describe_subjects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the loadable subjects, the broken ones), each a JSON-ready document, sorted by name.

    A subject document: ``name``, ``description``, ``scenarios``, ``faults`` (``kind``,
    ``description``, ``default_ttl_s``, ``params``: a JSON schema), ``invariants`` (``name``,
    ``description``, ``grace_s``) and ``tools`` (``name``, ``description``, ``mutating``,
    ``read_only``). A broken one: ``name``, ``package``, ``target``, ``error`` and empty lists.
    """
    found = registry()
    docs = []
    broken = [{**asdict(b), "faults": [], "invariants": [], "tools": []} for b in found.broken]
    for name in found.names():
        subject = found.subjects[name]
        try:
            catalogue = subject.catalogue()
            scenarios = list(subject.scenarios())
        except Exception as exc:  # a plug-in's catalogue failing is reported, never fatal
            broken.append({"name": name, "package": type(subject).__module__.split(".")[0],
                           "target": f"{type(subject).__module__}:{type(subject).__qualname__}",
                           "error": f"{type(exc).__name__}: {exc}", "faults": [], "invariants": [], "tools": []})
            continue
        docs.append({
            "name": name,
            "description": subject.description,
            "scenarios": scenarios,
            "faults": [asdict(f) for f in catalogue.faults],
            "invariants": [asdict(i) for i in catalogue.invariants],
            "tools": [{**asdict(t), "read_only": not t.mutating} for t in catalogue.tools],
        })
    return docs, sorted(broken, key=lambda b: b["name"])
