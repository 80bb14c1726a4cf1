"""Build an ONNX model with the architecture and compute of Ultralytics YOLOv8n at 640 (random weights).

Same blocks as the real thing (Conv-BN-SiLU fused, C2f, SPPF, FPN/PAN neck, decoupled Detect head with DFL and
anchor decoding), same output `output0` [1, 84, 8400] and the same metadata keys, so the detector sees what a real
`yolov8n.onnx` gives it, without downloading weights. The class-head bias is tuned so a frame yields ~100 candidates
over the 0.25 threshold, like a busy real scene, rather than zero or thousands.

`dynamic=True` builds what `yolo export dynamic=True` gives: input height and width symbolic, the anchor grid
computed in the graph from each level's feature-map shape, output [1, 84, anchors]. With the same seed and bias
it is the very same network (same weights, same arithmetic) as the fixed build, so its detections can be compared.

    python benchmarks/yolov8n_like.py --out benchmarks/.cache/yolov8n_like.onnx [--dynamic]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NUM_CLASSES = 80
REG_MAX = 16


class GraphBuilder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.n = 0
        self.params = 0
        self.flops = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, value: np.ndarray, prefix="c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv(self, x: str, c_in: int, c_out: int, k: int, s: int, hw: int, act=True, bias_value=0.0) -> tuple[str, int]:
        w = self.rng.normal(0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k)).astype(np.float32)
        b = np.full(c_out, bias_value, np.float32)
        out_hw = hw // s
        self.params += w.size + b.size
        self.flops += 2 * w.size * out_hw * out_hw
        y = self.op("Conv", [x, self.const(w, "w"), self.const(b, "b")], kernel_shape=[k, k], strides=[s, s],
                    pads=[k // 2] * 4)
        if act:
            y = self.op("Mul", [y, self.op("Sigmoid", [y])])
        return y, out_hw

    def c2f(self, x: str, c_in: int, c_out: int, n: int, hw: int, shortcut: bool) -> str:
        c = c_out // 2
        y, _ = self.conv(x, c_in, 2 * c, 1, 1, hw)
        parts = [self.op("Slice", [y, self.const(np.array([0])), self.const(np.array([c])), self.const(np.array([1]))]),
                 self.op("Slice", [y, self.const(np.array([c])), self.const(np.array([2 * c])), self.const(np.array([1]))])]
        for _ in range(n):
            h, _ = self.conv(parts[-1], c, c, 3, 1, hw)
            h, _ = self.conv(h, c, c, 3, 1, hw)
            parts.append(self.op("Add", [parts[-1], h]) if shortcut else h)
        out, _ = self.conv(self.op("Concat", parts, axis=1), (2 + n) * c, c_out, 1, 1, hw)
        return out

    def sppf(self, x: str, c_in: int, c_out: int, hw: int) -> str:
        c = c_in // 2
        y, _ = self.conv(x, c_in, c, 1, 1, hw)
        pools = [y]
        for _ in range(3):
            pools.append(self.op("MaxPool", [pools[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]))
        out, _ = self.conv(self.op("Concat", pools, axis=1), 4 * c, c_out, 1, 1, hw)
        return out

    def upsample(self, x: str) -> str:
        return self.op("Resize", [x, "", self.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")

    def dynamic_grid(self, feat: str, stride: int) -> tuple[str, str]:
        """Anchor centres [1, 2, h*w] and strides [1, 1, h*w] of one level, from its runtime shape (any h, w)."""
        shape = self.op("Shape", [feat])
        h = self.op("Gather", [shape, self.const(np.array(2, np.int64))], axis=0)
        w = self.op("Gather", [shape, self.const(np.array(3, np.int64))], axis=0)
        half, one = self.const(np.array(0.5, np.float32)), self.const(np.array(1.0, np.float32))
        ys = self.op("Range", [half, self.op("Add", [self.op("Cast", [h], to=TensorProto.FLOAT), half]), one])
        xs = self.op("Range", [half, self.op("Add", [self.op("Cast", [w], to=TensorProto.FLOAT), half]), one])
        axis0, axis1 = self.const(np.array([0])), self.const(np.array([1]))
        hw = self.op("Concat", [self.op("Unsqueeze", [h, axis0]), self.op("Unsqueeze", [w, axis0])], axis=0)
        flat = self.const(np.array([1, 1, -1]))
        xx = self.op("Reshape", [self.op("Expand", [self.op("Unsqueeze", [xs, axis0]), hw]), flat])
        yy = self.op("Reshape", [self.op("Expand", [self.op("Unsqueeze", [ys, axis1]), hw]), flat])
        strides = self.op("Add", [self.op("Mul", [xx, self.const(np.array(0.0, np.float32))]),
                                  self.const(np.array(float(stride), np.float32))])
        return self.op("Concat", [xx, yy], axis=1), strides


def build(imgsz: int = 640, seed: int = 0, cls_bias: float = -5.0,
          dynamic: bool = False) -> tuple[onnx.ModelProto, int, int]:
    g = GraphBuilder(seed)
    x = "images"
    x, hw = g.conv(x, 3, 16, 3, 2, imgsz)
    x, hw = g.conv(x, 16, 32, 3, 2, hw)
    x = g.c2f(x, 32, 32, 1, hw, True)
    x, hw = g.conv(x, 32, 64, 3, 2, hw)
    p3 = g.c2f(x, 64, 64, 2, hw, True)
    x, hw = g.conv(p3, 64, 128, 3, 2, hw)
    p4 = g.c2f(x, 128, 128, 2, hw, True)
    x, hw = g.conv(p4, 128, 256, 3, 2, hw)
    x = g.c2f(x, 256, 256, 1, hw, True)
    p5 = g.sppf(x, 256, 256, hw)
    s = imgsz
    # Neck (FPN down, PAN up), as yolov8.yaml.
    n4 = g.c2f(g.op("Concat", [g.upsample(p5), p4], axis=1), 384, 128, 1, s // 16, False)
    n3 = g.c2f(g.op("Concat", [g.upsample(n4), p3], axis=1), 192, 64, 1, s // 8, False)
    d4, _ = g.conv(n3, 64, 64, 3, 2, s // 8)
    m4 = g.c2f(g.op("Concat", [d4, n4], axis=1), 192, 128, 1, s // 16, False)
    d5, _ = g.conv(m4, 128, 128, 3, 2, s // 16)
    m5 = g.c2f(g.op("Concat", [d5, p5], axis=1), 384, 256, 1, s // 32, False)

    c2, c3 = max(16, 64 // 4, REG_MAX * 4), max(64, min(NUM_CLASSES, 100))
    levels = []
    for feat, ch, stride in ((n3, 64, 8), (m4, 128, 16), (m5, 256, 32)):
        h = s // stride
        box, _ = g.conv(feat, ch, c2, 3, 1, h)
        box, _ = g.conv(box, c2, c2, 3, 1, h)
        box, _ = g.conv(box, c2, 4 * REG_MAX, 1, 1, h, act=False)
        cls, _ = g.conv(feat, ch, c3, 3, 1, h)
        cls, _ = g.conv(cls, c3, c3, 3, 1, h)
        cls, _ = g.conv(cls, c3, NUM_CLASSES, 1, 1, h, act=False, bias_value=cls_bias)
        cat = g.op("Concat", [box, cls], axis=1)
        levels.append(g.op("Reshape", [cat, g.const(np.array([1, 4 * REG_MAX + NUM_CLASSES, -1 if dynamic else h * h]))]))
    pred = g.op("Concat", levels, axis=2)
    box = g.op("Slice", [pred, g.const(np.array([0])), g.const(np.array([4 * REG_MAX])), g.const(np.array([1]))])
    cls = g.op("Slice", [pred, g.const(np.array([4 * REG_MAX])), g.const(np.array([4 * REG_MAX + NUM_CLASSES])),
                         g.const(np.array([1]))])
    # DFL: softmax over 16 bins per side, expectation via a 1x1 conv with weights 0..15.
    n_anchors = sum((s // st) ** 2 for st in (8, 16, 32))
    dfl = g.op("Reshape", [box, g.const(np.array([1, 4, REG_MAX, -1 if dynamic else n_anchors]))])
    dfl = g.op("Softmax", [g.op("Transpose", [dfl], perm=[0, 2, 1, 3])], axis=1)
    dist = g.op("Conv", [dfl, g.const(np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1))])
    dist = g.op("Reshape", [dist, g.const(np.array([1, 4, -1 if dynamic else n_anchors]))])
    if dynamic:
        grids = [g.dynamic_grid(feat, st) for feat, st in ((n3, 8), (m4, 16), (m5, 32))]
        anchor = g.op("Concat", [a for a, _ in grids], axis=2)
        stride = g.op("Concat", [st for _, st in grids], axis=2)
    else:
        anchors, strides = [], []
        for st in (8, 16, 32):
            h = s // st
            yy, xx = np.meshgrid(np.arange(h) + 0.5, np.arange(h) + 0.5, indexing="ij")
            anchors.append(np.stack([xx.ravel(), yy.ravel()]))
            strides.append(np.full(h * h, st))
        anchor = g.const(np.concatenate(anchors, 1)[None].astype(np.float32))
        stride = g.const(np.concatenate(strides)[None, None].astype(np.float32))
    lt = g.op("Slice", [dist, g.const(np.array([0])), g.const(np.array([2])), g.const(np.array([1]))])
    rb = g.op("Slice", [dist, g.const(np.array([2])), g.const(np.array([4])), g.const(np.array([1]))])
    x1y1 = g.op("Sub", [anchor, lt])
    x2y2 = g.op("Add", [anchor, rb])
    cxy = g.op("Div", [g.op("Add", [x1y1, x2y2]), g.const(np.array(2.0, np.float32))])
    wh = g.op("Sub", [x2y2, x1y1])
    xywh = g.op("Mul", [g.op("Concat", [cxy, wh], axis=1), stride])
    out = g.op("Concat", [xywh, g.op("Sigmoid", [cls])], axis=1)
    g.nodes.append(helper.make_node("Identity", [out], ["output0"]))

    side, anchors_dim = ("height", "width"), "anchors"
    graph = helper.make_graph(
        g.nodes, "yolov8n_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *(side if dynamic else (imgsz, imgsz))])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT,
                                       [1, 4 + NUM_CLASSES, anchors_dim if dynamic else n_anchors])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    names = {i: f"class{i}" for i in range(NUM_CLASSES)}
    for key, value in {"description": "YOLOv8n-compute stand-in with random weights (benchmarks only)",
                       "author": "edge-console benchmarks", "task": "detect", "stride": "32", "batch": "1",
                       "imgsz": str([imgsz, imgsz]), "names": str(names), "version": "0.0.0",
                       "model_name": "yolov8n-like-dynamic" if dynamic else "yolov8n-like"}.items():
        model.metadata_props.add(key=key, value=value)
    return model, g.params, g.flops


def tuned_model(out: Path, frame: np.ndarray, imgsz: int = 640, target_candidates: int = 100,
                dynamic_out: Path | None = None) -> dict:
    """Build, measure the class logits on a real frame, and rebuild with the bias that gives ~target candidates.

    With `dynamic_out`, also write the dynamic-axes build of the same network (same seed, same bias) there.
    """
    import onnxruntime as ort

    from edge_console.core.detection.model_spec import ModelSpec
    from edge_console.core.detection.preprocess import Preprocessor

    model, params, flops = build(imgsz, cls_bias=0.0)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    spec = ModelSpec(path=out, name="probe", version="0", sha256="", class_names=(), input_name="images",
                     input_height=imgsz, input_width=imgsz)
    tensor, _ = Preprocessor(spec)(frame)
    scores = sess.run(None, {"images": tensor})[0][0, 4:].max(axis=0).clip(1e-6, 1 - 1e-6)
    logits = np.sort(np.log(scores / (1 - scores)))[::-1]
    bias = float(np.log(0.25 / 0.75) - logits[target_candidates])
    for path, dynamic in ((out, False), (dynamic_out, True)):
        if path is None:
            continue
        model, _, _ = build(imgsz, cls_bias=bias, dynamic=dynamic)
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
    return {"params": params, "gflops": round(flops / 1e9, 2), "cls_bias": round(bias, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.cache/yolov8n_like.onnx"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--dynamic", type=Path, default=None, help="also write the dynamic-axes build here")
    args = parser.parse_args()
    frame = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    print(tuned_model(args.out, frame, args.imgsz, dynamic_out=args.dynamic))


if __name__ == "__main__":
    main()
