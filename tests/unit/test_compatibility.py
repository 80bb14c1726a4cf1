"""One compatibility rule: the device refuses exactly the releases a console greys out for it, in the same words."""

from __future__ import annotations

import platform

import pytest

from edge_console import __version__ as AGENT_VERSION  # noqa: N812 - the name the agent reports it under
from edge_console.agent.updates._service import UpdateRejected, check_compatibility
from edge_console.client.releases.eligibility import DeviceFacts, compatibility_problem
from edge_console.core.detection.onnx_runtime import available_providers
from edge_console.core.releases.file_format import BundleManifest

HERE = platform.machine()
NEEDS = [
    ([], "0", []),
    ([HERE], "0", []),
    (["armv7l"], "0", []),
    ([HERE, "armv7l"], AGENT_VERSION, []),
    ([], "999.0.0", []),
    ([], "0", ["CPUExecutionProvider"]),
    ([], "0", ["TensorrtExecutionProvider", "CPUExecutionProvider"]),
    (["armv7l"], "999.0.0", ["TensorrtExecutionProvider"]),
]


def manifest(architectures: list[str], min_agent: str, providers: list[str]) -> BundleManifest:
    return BundleManifest("parts", "2.0.0", {}, {}, [], architectures=architectures, min_agent_version=min_agent,
                          required_providers=providers)


@pytest.mark.parametrize(("architectures", "min_agent", "providers"), NEEDS)
def test_the_device_and_the_console_judge_a_release_alike(architectures, min_agent, providers):
    device = DeviceFacts("d1", "Press line 1", "https://127.0.0.1:1", arch=HERE, agent_version=AGENT_VERSION,
                         providers=available_providers())
    console_says = compatibility_problem({"architectures": architectures, "min_agent_version": min_agent,
                                          "required_providers": providers}, device)
    try:
        check_compatibility(manifest(architectures, min_agent, providers), AGENT_VERSION)
        device_says = None
    except UpdateRejected as exc:
        device_says = str(exc).removeprefix("incompatible: ")
    assert console_says == device_says


def test_what_a_console_does_not_know_of_a_device_does_not_grey_a_release_out():
    unknown = DeviceFacts("d1", "Press line 1", "https://127.0.0.1:1")
    summary = {"architectures": ["armv7l"], "min_agent_version": "999.0.0", "required_providers": ["Tensorrt"]}
    assert compatibility_problem(summary, unknown) is None
    known_arch = DeviceFacts("d1", "Press line 1", "https://127.0.0.1:1", arch="x86_64")
    assert compatibility_problem(summary, known_arch) == "built for armv7l; the device is x86_64"
