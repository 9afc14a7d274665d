"""The configuration files shipped with dicom-dispatch, as package data: the
association negotiation profiles (``storescu.cfg``), the settings file
(``dispatch.toml``) and Prometheus' scrape configuration (``prometheus.yml``).

In a checkout they are the files of the top-level ``config/`` folder (this package links
to them); an installed wheel carries copies.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SHIPPED", "shipped_file"]

SHIPPED = ("storescu.cfg", "dispatch.toml", "prometheus.yml")
"""The names of the shipped files."""


def shipped_file(name: str) -> Path | None:
    """The path of the shipped file ``name`` (one of :data:`SHIPPED`), None for any
    other name."""
    if name not in SHIPPED:
        return None
    return Path(str(resources.files(__name__).joinpath(name)))
