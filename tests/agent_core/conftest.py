"""The agent-core tests call the shared private broker `broker`."""

from __future__ import annotations

import pytest

from roadpulse.services import Mosquitto


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Mosquitto:
    """The shared fixture: its broker writes its log and persistence (see roadpulse.services)."""
    return mosquitto
