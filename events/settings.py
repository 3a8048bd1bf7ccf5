"""Bus settings (env prefix ``OPLAB_``; ``NATS_URL`` is honoured too)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

STREAM_NAME = "LAB"


class BusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("OPLAB_NATS_URL", "NATS_URL"),
    )
    nats_user: str | None = None
    """The NATS user to connect as (a lab whose NATS has users: see ``oplab.nats_auth``)."""
    nats_password: SecretStr | None = None
    nats_password_file: Path | None = None
    """Where the user's password is kept, instead of ``nats_password`` (a container's mounted secret)."""
    nats_auth_dir: Path | None = None
    """A directory of password files named after their roles (compose's ``nats-auth`` volume): a
    process connects as the role it plays (:meth:`for_role`)."""
    stream_replicas: int = Field(default=1, ge=1, le=5)
    """Copies of the stream in a NATS cluster (the launcher sets 3 for ``OPLAB_NATS_CLUSTER=3``)."""
    stream_max_age_s: float = 7 * 24 * 3600.0
    stream_max_bytes: int = 2 * 1024**3
    stream_duplicate_window_s: float = 120.0
    max_deliver: int = 5
    ack_wait_s: float = 30.0

    def servers(self) -> list[str]:
        """Every server of ``nats_url`` (a cluster's URLs, comma-separated; one for a single server)."""
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]

    def for_role(self, role: str) -> BusSettings:
        """These settings as ``role`` where the lab keeps a password per role (``nats_auth_dir``)
        and no user is given; otherwise unchanged."""
        if self.nats_auth_dir is None or self.nats_user:
            return self
        return self.model_copy(update={"nats_user": role, "nats_password_file": self.nats_auth_dir / role})

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) to connect with, or None (anonymous, or credentials in the URL).
        Raises ``ValueError`` if a user is named without a readable password."""
        if not self.nats_user:
            return None
        if self.nats_password is not None:
            return self.nats_user, self.nats_password.get_secret_value()
        if self.nats_password_file is not None:
            try:
                return self.nats_user, self.nats_password_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"NATS user {self.nats_user}: cannot read its password file "
                                 f"{self.nats_password_file}: {exc.strerror}") from exc
        raise ValueError(f"NATS user {self.nats_user} has no password: set OPLAB_NATS_PASSWORD "
                         "or OPLAB_NATS_PASSWORD_FILE")
