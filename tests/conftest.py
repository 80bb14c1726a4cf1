import threading

import pytest

from edge_console.core.paths import demo_model
from tests.support.agent_harness import STARTED
from tests.support.built_once import update_kit, wheel  # noqa: F401 - session fixtures, found by pytest by name


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows what its agents said: the end of the logs of each agent running, or started, then."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for agent in list(STARTED):
            if agent.running or agent.started_at >= call.start:
                report.sections.append((f"agent {agent.name} ({agent.log_dir})", agent.log()[-4000:]))
    return report


# Parallel workers (pytest-xdist, `make test`): each test file runs whole on one worker (module fixtures such as a
# release kit or the field trial's site are made once), and every file that announces or browses mDNS on 127.0.0.1
# runs on the same worker: the loopback's multicast is one medium for the whole machine, and a test counting what it
# discovers must not see another test's devices (or another test's flood of announcements).
MDNS_FILES = {
    "tests/agent/test_discovery.py", "tests/agent/test_pipeline_inprocess.py",
    "tests/console/test_discovery.py", "tests/console/test_discovery_flood.py", "tests/console/test_console_trust.py",
    "tests/console/test_offline_and_restart.py", "tests/console/test_main_window.py",
    "tests/console/test_window_layout.py", "tests/console/test_current_device.py", "tests/console/test_live_preview.py",
    "tests/console/test_preview_feedback.py", "tests/console/test_text_fits.py", "tests/console/test_bad_devices.py",
    "tests/client/test_discovery_limits.py", "tests/client/test_mdns_hostile.py",
    "tests/client/test_mdns_return.py", "tests/installers/test_console_app.py",
    "tests/installers/test_offline_kit.py", "tests/packaging/test_wheel_install.py",
    "tests/releases_ui/test_demo_tour.py", "tests/console/test_messages.py",
}


# The second lane (`make test-slow`; `make test-all` and CI run both): what builds and installs whole programs,
# and the field trial's simulated site. Everything else is the main lane, `make test`.
SLOW_LANE = ("tests/installers/", "tests/packaging/", "tests/field_trial/test_site.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(SLOW_LANE):
            item.add_marker(pytest.mark.slow_lane)


def lane_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return "mdns" if path in MDNS_FILES else path


def pytest_xdist_make_scheduler(config, log):
    """Whole files to a worker, the mDNS files together (see above). pytest-xdist's own `loadgroup` cannot do it
    with pytest 9 (it renames test ids, which pytest 9 no longer allows), so its file scheduler is told the scopes."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane_of(nodeid)

    return LaneScheduling(config, log)
