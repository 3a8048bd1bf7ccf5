"""Importing this fails, as a plug-in with a missing dependency would."""

import a_dependency_nobody_installed  # noqa: F401

BrokenSubject = None
