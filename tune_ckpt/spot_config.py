"""``SpotConfig``: watching for spot interruption notices (``RunConfig(spot=...)``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tune_ckpt.config_checks import finite_number, invalid

SpotProvider = Literal["aws", "gcp", "auto"]
METADATA_URL = "http://169.254.169.254"  # both clouds' link-local instance metadata service


@dataclass(frozen=True)
class SpotConfig:
    """Watching for spot interruption notices: one watcher per node turns the cloud's
    notice into a Ray drain (``tune_ckpt.spot``).

    Args:
        provider: ``"aws"``, ``"gcp"``, or ``"auto"`` (the one whose metadata answers).
        poll_s: seconds between two reads of the notice.
        margin_s: the drain's deadline is this long before the notice's time, so the
            node's trials are saved and gone before the cloud stops the instance.
        metadata_url: the metadata service (default the clouds' ``169.254.169.254``);
            tests point it at a fake one on 127.0.0.1.
        timeout_s: how long one request to the metadata service may take.
        enabled: False turns the watchers off while keeping the settings.
    """

    provider: SpotProvider = "auto"
    poll_s: float = 2.0
    margin_s: float = 5.0
    metadata_url: str = METADATA_URL
    timeout_s: float = 1.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.provider not in ("aws", "gcp", "auto"):
            raise invalid("provider", self.provider, "one of aws, gcp, auto")
        finite_number("poll_s", self.poll_s, 0, True, what="a number of seconds")
        finite_number("margin_s", self.margin_s, 0, False, what="a number of seconds")
        finite_number("timeout_s", self.timeout_s, 0, True, what="a number of seconds")
        url = self.metadata_url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("metadata_url", url, "an http:// or https:// URL")
        if not isinstance(self.enabled, bool):
            raise invalid("enabled", self.enabled, "True or False")
