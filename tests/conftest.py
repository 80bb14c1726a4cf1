import threading

import pytest

from edge_console.core.paths import demo_model


@pytest.fixture(scope="session")
def parts_v2():
    path = demo_model("parts-v2")
    assert path.is_file(), f"{path} missing: the demo models ship in models/"
    return path


@pytest.fixture(scope="session")
def parts_v1():
    path = demo_model("parts-v1")
    assert path.is_file(), f"{path} missing: the demo models ship in models/"
    return path


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """A test must not leave threads running (napari's rule): leaked threads make later tests flaky."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for t in set(threading.enumerate()) - before:
        t.join(timeout=5)
        if t.is_alive() and not t.daemon:
            leaked.append(t.name)
    assert not leaked, f"threads left running: {leaked}"
