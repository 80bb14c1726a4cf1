"""The release views' tests use the console tests' fixtures (tests/support/console_fixtures.py): offscreen Qt with
the test screens, real agents on 127.0.0.1 paired with the test fleets (`agent_factory`, `fleet_factory`), and the
thread-leak check."""

from tests.support.console_fixtures import (  # noqa: F401 - fixtures, found by pytest by name
    agent_factory,
    fleet_factory,
    no_leaked_threads,
    sound_qt_binding,
)
