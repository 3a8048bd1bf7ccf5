"""What a subject's roles raise when they cannot do what was asked."""

from __future__ import annotations


class SubjectError(Exception):
    """A tool, fault or observation could not do what was asked; the message says why."""


class RefusedError(SubjectError):
    """The request is invalid (unknown target, bad parameters) and nothing was done."""
