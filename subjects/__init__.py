"""Systems under test. Each subject package provides an :class:`~subjects.base.Adapter`."""
