"""The detector's whole call (preprocess + run + decode) against bare `session.run` on a prepared tensor.

Both use the very same InferenceSession on the same frames, interleaved call by call so machine noise hits
both alike; figures are medians. Goals (issue 2): ratio <= 1.10 for the YOLOv8n-class model, and
preprocess + decode of a 1280x720 frame < 3 ms.

    python benchmarks/bench_detector.py [--frames 30] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_console.core.detector import Detector  # noqa: E402
from edge_console.core.scene import ConveyorScene  # noqa: E402

from benchmarks.yolov8n_like import tuned_model  # noqa: E402


def measure(detector: Detector, frames: list, rounds: int) -> dict:
    tensors = [detector.preprocess(f)[0] for f in frames]
    bare, full, pre, post, counts = [], [], [], [], []
    for _ in range(rounds):
        for frame, tensor in zip(frames, tensors):
            t0 = time.perf_counter()
            detector.run(tensor)
            t1 = time.perf_counter()
            result = detector.detect(frame)
            t2 = time.perf_counter()
            bare.append((t1 - t0) * 1e3)
            full.append((t2 - t1) * 1e3)
            pre.append(result.timings.preprocess_ms)
            post.append(result.timings.postprocess_ms)
            counts.append(len(result.detections))
    bare_ms, detector_ms = statistics.median(bare), statistics.median(full)
    return {
        "model": detector.spec.name,
        "input": f"{detector.spec.input_width}x{detector.spec.input_height}",
        "frame": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "provider": detector.provider,
        "bare_ms": round(bare_ms, 3),
        "detector_ms": round(detector_ms, 3),
        "ratio": round(detector_ms / bare_ms, 4),
        "pre_ms": round(statistics.median(pre), 3),
        "post_ms": round(statistics.median(post), 3),
        "pre_plus_post_ms": round(statistics.median(p + q for p, q in zip(pre, post)), 3),
        "detections_per_frame": round(statistics.mean(counts), 1),
        "calls": len(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all)")
    args = parser.parse_args()

    scene = ConveyorScene(width=1280, height=720, seed=7)
    frames = [scene.frame(i * 5)[0] for i in range(args.frames)]
    yolo_path = ROOT / "benchmarks" / ".cache" / "yolov8n_like.onnx"
    info = tuned_model(yolo_path, frames[0])
    results = []
    for path in (ROOT / "models" / "parts-v2.onnx", yolo_path):
        detector = Detector(path, intra_op_threads=args.threads)
        for f in frames[:3]:
            detector.detect(f)  # warm caches and allocator before timing
        results.append(measure(detector, frames, args.rounds))
        print(json.dumps(results[-1]), flush=True)
    yolo = results[-1]
    summary = {
        "benchmark": "detector",
        "results": results,
        "yolov8n_like": {"params": info["params"], "gflops": info["gflops"]},
        "goal_ratio_le_1_10": yolo["ratio"] <= 1.10,
        "goal_pre_post_1280x720_lt_3ms": all(r["pre_plus_post_ms"] < 3.0 for r in results),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
