import pytest
import time_machine
from django.utils import timezone


@pytest.fixture
def clock():
    """The clock stopped at now; tests move it with ``clock.shift``."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller
