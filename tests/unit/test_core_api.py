"""The public face of edge_console.core: one import for scripts, and no heavy module loaded before it is asked for."""

import subprocess
import sys
from pathlib import Path

import pytest

import edge_console.core as core

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_import_from_the_package():
    from edge_console.core import API_VERSION, Detector, MatchReport, errors, match_detections, version_key
    from edge_console.core.detection.detector import Detector as DetectorItself
    from edge_console.core.protocol import API_VERSION as PROTOCOL_VERSION

    assert Detector is DetectorItself and API_VERSION == PROTOCOL_VERSION
    assert isinstance(match_detections([], []), MatchReport)
    assert issubclass(errors.UnknownModelLayoutError, errors.ModelError)
    assert version_key("2.10.0") > version_key("2.9.0")


def test_every_name_in_all_resolves_and_all_lists_every_export():
    assert set(core.__all__) == set(core._EXPORTS) | set(core._SUBMODULES)
    for name in core.__all__:
        assert getattr(core, name) is not None, name
    assert set(core.__all__) <= set(dir(core))


def test_unknown_names_are_attribute_errors_and_submodules_still_import():
    with pytest.raises(AttributeError, match="no attribute 'Detecter'"):
        core.Detecter  # noqa: B018 - the attribute access is the test
    from edge_console.core import scene  # not exported by name, still a package of the core

    assert scene.__name__ == "edge_console.core.scene"


def loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize("statement", ["import edge_console.core.protocol", "import edge_console.core",
                                       "from edge_console.core import API_VERSION, parse_version"])
def test_light_imports_do_not_load_onnxruntime_or_opencv(statement):
    loaded = loaded_by(statement)
    assert "edge_console" in loaded  # the import really happened in the child
    assert not loaded & {"onnxruntime", "cv2"}


def test_asking_for_the_detector_loads_onnxruntime():
    # The check above can fail: the same probe sees onnxruntime once the detector is asked for.
    assert "onnxruntime" in loaded_by("from edge_console.core import Detector")
