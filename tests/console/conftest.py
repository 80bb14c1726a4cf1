"""Console test fixtures (tests/support/console_fixtures.py): offscreen Qt, real agents on 127.0.0.1, a console
fleet, and a thread-leak check."""

from tests.support.console_fixtures import (  # noqa: F401 - fixtures, found by pytest by name
    agent_factory,
    fleet_factory,
    no_leaked_threads,
    shared_agents,
    sound_qt_binding,
)
