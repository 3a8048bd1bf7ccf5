"""``oplab subjects``: every registered subject's catalogue as plain documents (for people and ``--json``)."""

from __future__ import annotations

from typing import Any

from subjects.registry import registry


def describe_subjects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the loadable subjects, the broken ones), each a JSON-ready document, sorted by name.

    A subject document: ``name``, ``package``, ``description``, ``scenarios``, ``faults`` (``kind``,
    ``description``, ``default_ttl_s``, ``params``: a JSON schema, ``detected_by``: the invariant it
    is meant to trip, null for a control), ``invariants`` (``name``,
    ``description``, ``grace_s``), ``tools`` (``name``, ``description``, ``mutating``, ``read_only``)
    and ``error: null``. A broken one has the same keys, empty lists and the ``error``.
    """
    found = registry()
    docs: list[dict[str, Any]] = []
    broken = [_broken(b.name, b.package, b.error) for b in found.broken]
    for name in found.names():
        subject = found.subjects[name]
        try:
            catalogue = subject.catalogue()
            scenarios = list(subject.scenarios())
        except Exception as exc:  # a plug-in's catalogue failing is reported, never fatal
            broken.append(_broken(name, found.packages.get(name, "?"), f"{type(exc).__name__}: {exc}"))
            continue
        docs.append({
            "name": name,
            "package": found.packages.get(name, "?"),
            "description": subject.description,
            "scenarios": scenarios,
            "faults": [{"kind": f.kind, "description": f.description, "default_ttl_s": f.default_ttl_s,
                        "params": f.params, "detected_by": f.detected_by} for f in catalogue.faults],
            "invariants": [{"name": i.name, "description": i.description, "grace_s": i.grace_s}
                           for i in catalogue.invariants],
            "tools": [{"name": t.name, "description": t.description, "mutating": t.mutating,
                       "read_only": not t.mutating} for t in catalogue.tools],
            "error": None,
        })
    return docs, sorted(broken, key=lambda b: b["name"])


def _broken(name: str, package: str, error: str) -> dict[str, Any]:
    return {"name": name, "package": package, "description": "", "scenarios": [], "faults": [],
            "invariants": [], "tools": [], "error": error}
