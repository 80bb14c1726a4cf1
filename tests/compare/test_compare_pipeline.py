"""Fetching ahead keeps every result with its own frame (issue 16): continuous comparison fetches frame N+1 while
frame N is being inferred, and each result must still be the local model's detections of ITS frame's pixels,
matched against the device's detections of those same pixels, under that frame's own sequence number."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np

from edge_console.client.compare.fetch import decode_frame
from edge_console.client.compare.session import CompareSession
from edge_console.client.net.bound_session import DeviceBoundSession
from edge_console.core.detection.comparison import remap
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.paths import demo_model, models_dir
from tests.support.console_trust import TEST_TRUST

FRAMES = 8


def boxes(detections) -> list[tuple]:
    return [(d.class_id, d.class_name, *d.box, d.confidence) for d in detections]


def same_detections(a, b, tolerance: float = 1e-3) -> bool:
    """Same classes in the same order, boxes and confidences equal to `tolerance` (the device rounds its wire
    format to a hundredth of a pixel; thread counts may change a float's last bits)."""
    return ([d.class_name for d in a] == [d.class_name for d in b]
            and np.allclose([(*d.box, d.confidence) for d in a], [(*d.box, d.confidence) for d in b], atol=tolerance)
            if a or b else True)


def test_fetching_ahead_keeps_frame_and_detections_paired(v2_device):
    events: list[tuple[str, int]] = []  # ("fetch", k) when the k-th fetch starts, ("compared", k) at the k-th result

    async def run() -> tuple[CompareSession, list]:
        async with aiohttp.ClientSession() as http:
            device = DeviceBoundSession(http, TEST_TRUST.ssl_for(v2_device))  # paired, as the Compare panel is
            session = await CompareSession.open(device, f"https://{v2_device.address}", ModelLibrary([models_dir()]))
            fetch_next = session.fetch_next

            async def noted_fetch(*args, **kwargs):
                events.append(("fetch", sum(kind == "fetch" for kind, _ in events) + 1))
                return await fetch_next(*args, **kwargs)

            def compared(frame, comparison) -> None:
                events.append(("compared", len(pairs) + 1))
                pairs.append((frame, comparison))

            session.fetch_next = noted_fetch
            pairs: list = []
            await session.run(compared, count=FRAMES)
            return session, pairs

    session, pairs = asyncio.run(run())
    # The pipeline did overlap: frame k+1 was already being fetched before frame k's result was in.
    for k in range(1, FRAMES):
        assert events.index(("fetch", k + 1)) < events.index(("compared", k)), events
    seqs = [frame.header.seq for frame, _ in pairs]
    assert len(pairs) == FRAMES and seqs == sorted(set(seqs))  # distinct frames, in the device's order

    reference = Detector(demo_model("parts-v2"))
    for frame, comparison in pairs:
        header, image = decode_frame(frame.message)  # the frame exactly as the device sent it
        assert comparison.seq == header.seq
        assert comparison.image is not None and np.array_equal(comparison.image, image)
        assert boxes(comparison.device) == boxes(header.detections)  # the device's detections of these pixels
        expected_local = remap(reference.detect(image).detections, session.mapping)
        assert same_detections(comparison.local, expected_local)  # and ours of these very pixels
        # Same model on both sides, same pixels: they agree exactly. A result paired with a neighbouring frame
        # would not (the parts move between frames).
        assert comparison.report.f1 == 1.0 and not comparison.report.unmatched_a and not comparison.report.unmatched_b
