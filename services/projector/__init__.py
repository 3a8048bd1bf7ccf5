"""The projector service: keeps the ticket log view up to date (``python -m services.projector``)."""

from services.projector.service import ProjectorService

__all__ = ["ProjectorService"]
