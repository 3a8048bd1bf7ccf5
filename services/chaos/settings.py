"""The chaos service's own settings (``OPLAB_CHAOS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChaosSettings(BaseSettings):
    """Limits and pacing of the fault lifecycle.

    - ``max_ttl_s``: the longest TTL an injection may ask for (longer is refused with a 400).
    - ``effective_timeout_s``: how long a fault's effect is polled for before it is recorded as
      ``fault_failed(stage="verify")``.
    - ``revert_retry_first_s`` / ``revert_retry_max_s``: the first pause before a failed revert is
      retried, doubling up to the maximum.
    """

    model_config = SettingsConfigDict(env_prefix="OPLAB_CHAOS_", extra="ignore")
    max_ttl_s: float = 3600.0
    effective_timeout_s: float = 5.0
    revert_retry_first_s: float = Field(default=0.5, gt=0)
    revert_retry_max_s: float = Field(default=5.0, gt=0)
