"""The destination's name: one formatter for every place that shows or keys on it."""

from __future__ import annotations

import pytest

from dispatch.jobs.model import destination_of
from dispatch.observe import destination_name, peer_name
from dispatch.settings import AssociationSettings


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("pacs.example", "ARCHIVE@pacs.example:104"),
        ("10.0.0.7", "ARCHIVE@10.0.0.7:104"),
        ("::1", "ARCHIVE@[::1]:104"),
        ("fe80::1%eth0", "ARCHIVE@[fe80::1%eth0]:104"),
    ],
)
def test_every_view_names_a_destination_alike(host: str, name: str) -> None:
    settings = AssociationSettings(host, 104, (), called_ae="ARCHIVE")
    assert peer_name("ARCHIVE", host, 104) == name
    assert destination_name(settings) == name
    assert destination_of(settings) == name
