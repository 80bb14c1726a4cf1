"""Train the demo parts detectors (parts-v1, parts-v2) on synthetic conveyor scenes and export them to ONNX.

Why it exists: the product ships two small detectors so the simulator, the comparison view and the update/rollback
flow have real models to work with, and anyone can rebuild them bit for bit from this file and
app/edge_console/core/scene/conveyor.py alone (no dataset download, CPU only, one thread).

The export looks exactly like an Ultralytics YOLOv8 detect export, because that is the layout the product's
detector recognises: input `images` [1, 3, S, S] RGB 0..1 letterboxed with grey 114; output `output0`
[1, 4 + nc, N] with cx, cy, w, h in input pixels and per-class sigmoid scores; Ultralytics' metadata keys.

The network is a small anchor-free detector in the YOLOv8/FCOS family: a plain conv backbone (BatchNorm + SiLU,
fused at export) down to stride 16, a top-down merge into stride 8, and decoupled box/class heads on both
strides. Boxes are regressed as distances (left, top, right, bottom) from each anchor point; training uses FCOS
centre sampling with a size range per stride, GIoU box loss and a quality focal loss whose positive target is
the IoU of the predicted box (so confidence ranks boxes by how well they fit, which is what mAP rewards).

Usage (see models/MODEL_CARD.md for the exact commands that made the shipped files):
    python models/training/train_parts.py --version v2 --out models/parts-v2.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "app"))  # run from a checkout without installing it

from edge_console.core.detection.metrics import mean_average_precision, precision_recall  # noqa: E402
from edge_console.core.scene.conveyor import CLASS_NAMES, GroundTruth, render_scene  # noqa: E402

TRAIN_SEED = 1000  # the training stream; evaluation sets use other seeds (evaluate_parts.py: 3000, tests: 4000)
VAL_SEED = 2000
IMGSZ = 320
STRIDES = (8, 16)
# Which stride learns which objects, by the longer box side in input pixels; the overlap gives mid-sized parts
# positives on both, and NMS keeps the better one.
SIZE_RANGES = ((0.0, 64.0), (32.0, 1e9))
LETTERBOX_GREY = 114
# Frame sizes the training scenes are rendered at: mostly the simulator's 640x480, some others so the model does
# not depend on one aspect ratio or one part scale.
FRAME_SIZES = (((640, 480), 0.7), ((800, 600), 0.1), ((640, 360), 0.1), ((480, 480), 0.1))


@dataclass(frozen=True)
class Recipe:
    widths: tuple[int, int, int, int]  # stem, stride 4, stride 8, stride 16 channels
    blocks8: int  # residual blocks at stride 8
    blocks16: int  # residual blocks at stride 16
    epochs: int
    train_images: int
    lr: float
    semver: str


# v1 is deliberately small and briefly trained: useful, but clearly beaten by v2 (the comparison/rollback demo).
RECIPES = {
    "v1": Recipe(widths=(8, 16, 24, 32), blocks8=0, blocks16=1, epochs=1, train_images=4500, lr=2e-3, semver="1.0.0"),
    "v2": Recipe(widths=(16, 32, 48, 80), blocks8=1, blocks16=2, epochs=6, train_images=6000, lr=2e-3, semver="2.0.0"),
}


# ----------------------------------------------------------------------------------------------------------------
# Data: rendered scenes, letterboxed exactly as the product's detector prepares frames


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, float, int, int]:
    """Resize keeping the aspect ratio and centre on grey, the Ultralytics way: (canvas, sx, sy, left, top)."""
    h, w = frame.shape[:2]
    ratio = min(size / w, size / h)
    new_w, new_h = round(w * ratio), round(h * ratio)
    left, top = round((size - new_w) / 2 - 0.1), round((size - new_h) / 2 - 0.1)
    canvas = np.full((size, size, 3), LETTERBOX_GREY, np.uint8)
    canvas[top:top + new_h, left:left + new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, new_w / w, new_h / h, left, top


def render_example(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene `index` of the stream `seed`, letterboxed: (canvas HxWx3 BGR, boxes Kx5 x1,y1,x2,y2,class in input px)."""
    rng = np.random.default_rng([seed, index])
    sizes, weights = zip(*FRAME_SIZES)
    width, height = sizes[rng.choice(len(sizes), p=weights)]
    frame, truths = render_scene(rng, width, height)
    canvas, sx, sy, left, top = letterbox(frame, size)
    boxes = np.array([[t.x1 * sx + left, t.y1 * sy + top, t.x2 * sx + left, t.y2 * sy + top, t.class_id]
                      for t in truths], np.float32).reshape(-1, 5)
    return canvas, boxes


class SceneSet:
    """A fixed stream of rendered scenes, made once (optionally cached on disk, shared by later runs)."""

    def __init__(self, seed: int, count: int, size: int, cache_dir: Path | None):
        self.count, self.size = count, size
        key = hashlib.sha256((REPO / "app/edge_console/core/scene/conveyor.py").read_bytes()).hexdigest()[:12]
        stem = f"scenes-{seed}-{size}-{key}"  # a changed generator never reuses old renders
        # Scene i depends only on (seed, i), so a larger cached set serves any smaller count.
        for cached in sorted(cache_dir.glob(f"{stem}-*.u8")) if cache_dir else []:
            stored_count = int(cached.stem.rsplit("-", 1)[1])
            if stored_count >= count and cached.with_suffix(".npz").exists():
                self.images = np.memmap(cached, np.uint8, "r", shape=(stored_count, size, size, 3))[:count]
                stored = np.load(cached.with_suffix(".npz"))
                self.boxes = [stored[str(i)] for i in range(count)]
                return
        images_path = cache_dir / f"{stem}-{count}.u8" if cache_dir else None
        boxes_path = images_path.with_suffix(".npz") if images_path else None
        started = time.perf_counter()
        if images_path:
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = images_path.with_suffix(".partial")
            self.images = np.memmap(partial, np.uint8, "w+", shape=(count, size, size, 3))
        else:
            self.images = np.empty((count, size, size, 3), np.uint8)
        self.boxes = []
        for i in range(count):
            self.images[i], b = render_example(seed, i, size)
            self.boxes.append(b)
        print(f"rendered {count} scenes (seed {seed}) in {time.perf_counter() - started:.0f} s", flush=True)
        if images_path:
            self.images.flush()
            np.savez(boxes_path, **{str(i): b for i, b in enumerate(self.boxes)})
            os.replace(partial, images_path)  # only a complete file is ever picked up as a cache

    def batch(self, indices: np.ndarray, rng: np.random.Generator | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Images as a float NCHW RGB 0..1 tensor, and per-image box tensors; random flips when rng is given."""
        images, targets = [], []
        for i in indices:
            img, boxes = np.array(self.images[i]), self.boxes[i].copy()
            if rng is not None:  # the camera looks straight down: mirrored scenes are just as real
                if rng.random() < 0.5:
                    img = img[:, ::-1]
                    boxes[:, [0, 2]] = self.size - boxes[:, [2, 0]]
                if rng.random() < 0.5:
                    img = img[::-1]
                    boxes[:, [1, 3]] = self.size - boxes[:, [3, 1]]
            images.append(img[..., ::-1])  # BGR -> RGB, as the detector feeds the model
            targets.append(torch.from_numpy(boxes))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2).float().div_(255)
        return x.contiguous(memory_format=torch.channels_last), targets


# ----------------------------------------------------------------------------------------------------------------
# Model


class ConvBNAct(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        """Fold BatchNorm into the convolution: the exported graph is conv + SiLU only, as Ultralytics exports."""
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.conv.kernel_size, self.conv.stride,
                          self.conv.padding, bias=True)
        fused.weight.data = self.conv.weight.data * scale[:, None, None, None]
        fused.bias.data = self.bn.bias.data - self.bn.running_mean * scale
        self.conv, self.bn = fused, nn.Identity()


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a, self.b = ConvBNAct(c, c), ConvBNAct(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class Head(nn.Module):
    """Decoupled heads, as YOLOv8: box regression and classification learn better from separate features."""

    def __init__(self, c: int, num_classes: int, stride: int):
        super().__init__()
        self.box = nn.Sequential(ConvBNAct(c, c), nn.Conv2d(c, 4, 1))
        self.cls = nn.Sequential(ConvBNAct(c, c), nn.Conv2d(c, num_classes, 1))
        # Start boxes at ~2 strides per side and scores at 1% so early training is calm (RetinaNet's prior).
        nn.init.constant_(self.box[-1].bias, math.log(math.e ** 2 - 1))
        nn.init.constant_(self.cls[-1].bias, -math.log(99))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        distances = F.softplus(self.box(x)) * self.stride  # left, top, right, bottom in input pixels
        return distances.flatten(2), self.cls(x).flatten(2)


class PartsNet(nn.Module):
    def __init__(self, recipe: Recipe, num_classes: int):
        super().__init__()
        c1, c2, c3, c4 = recipe.widths
        self.stem = nn.Sequential(ConvBNAct(3, c1, 3, 2), ConvBNAct(c1, c2, 3, 2))
        self.down8 = nn.Sequential(ConvBNAct(c2, c3, 3, 2), *[Residual(c3) for _ in range(recipe.blocks8)])
        self.down16 = nn.Sequential(ConvBNAct(c3, c4, 3, 2), *[Residual(c4) for _ in range(recipe.blocks16)])
        self.lateral = ConvBNAct(c4, c3, 1)
        self.merge = ConvBNAct(2 * c3, c3)  # stride-8 detail plus stride-16 context
        # Both heads work on c3 channels (stride 16 through the lateral 1x1): wide heads would double the file size.
        self.heads = nn.ModuleList([Head(c3, num_classes, 8), Head(c3, num_classes, 16)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs over all anchor points: distances (B, 4, N) in pixels and class logits (B, nc, N)."""
        p8 = self.down8(self.stem(x))
        p16 = self.down16(p8)
        f16 = self.lateral(p16)
        f8 = self.merge(torch.cat([p8, F.interpolate(f16, scale_factor=2.0, mode="nearest")], 1))
        outs = [head(f) for head, f in zip(self.heads, (f8, f16))]
        return torch.cat([o[0] for o in outs], 2), torch.cat([o[1] for o in outs], 2)


def anchor_points(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (N, 2) in input pixels and their strides (N,), in the order the heads flatten them."""
    points, strides = [], []
    for s in STRIDES:
        n = size // s
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        points.append(torch.stack([xs, ys], -1).reshape(-1, 2).float().add(0.5).mul(s))
        strides.append(torch.full((n * n,), float(s)))
    return torch.cat(points), torch.cat(strides)


class UltralyticsLayout(nn.Module):
    """What gets exported: the network plus decoding into YOLOv8's [1, 4 + nc, N] cx, cy, w, h + sigmoid scores."""

    def __init__(self, net: PartsNet, size: int):
        super().__init__()
        self.net = net
        points, _ = anchor_points(size)
        self.register_buffer("points", points.T.unsqueeze(0))  # (1, 2, N)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dist, logits = self.net(images)
        lt, rb = dist[:, :2], dist[:, 2:]
        centre = self.points + (rb - lt) / 2
        return torch.cat([centre, lt + rb, logits.sigmoid()], 1)


# ----------------------------------------------------------------------------------------------------------------
# Assignment and loss


def assign(points: torch.Tensor, strides: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """FCOS assignment for one image: the index of the box each anchor learns (-1 for background).

    An anchor is positive for a box when it lies inside it, within 2.5 strides of its centre, and on a stride
    whose size range fits the box; an anchor inside several boxes takes the smallest. A box too small to contain
    any anchor still gets the one nearest its centre on its stride.
    """
    n, m = len(points), len(boxes)
    if m == 0:
        return torch.full((n,), -1, dtype=torch.long)
    x, y = points[:, :1], points[:, 1:]
    x1, y1, x2, y2 = (boxes[:, i][None] for i in range(4))
    inside = torch.minimum(torch.minimum(x - x1, y - y1), torch.minimum(x2 - x, y2 - y)) > 0
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    radius = 2.5 * strides[:, None]
    central = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
    longest = torch.maximum(x2 - x1, y2 - y1)
    lo = torch.tensor([r[0] for r in SIZE_RANGES])
    hi = torch.tensor([r[1] for r in SIZE_RANGES])
    level = torch.bucketize(strides, torch.tensor(STRIDES, dtype=torch.float32))
    in_range = (longest >= lo[level][:, None]) & (longest <= hi[level][:, None])
    candidate = inside & central & in_range
    orphans = (~candidate.any(0)).nonzero().flatten()
    for j in orphans.tolist():
        distance = (x[:, 0] - cx[0, j]) ** 2 + (y[:, 0] - cy[0, j]) ** 2
        distance[~in_range[:, j]] = float("inf")
        candidate[int(distance.argmin()), j] = True
    area = ((x2 - x1) * (y2 - y1)).expand(n, m).masked_fill(~candidate, float("inf"))
    best_area, best = area.min(1)
    return torch.where(torch.isfinite(best_area), best, torch.full_like(best, -1))


def giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(IoU, GIoU) of matching rows of x1,y1,x2,y2 boxes."""
    inter = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(1).clamp(min=1e-6)
    return iou, iou - (hull - union) / hull


def detection_loss(dist: torch.Tensor, logits: torch.Tensor, targets: list[torch.Tensor], points: torch.Tensor,
                   strides: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    box_losses, cls_losses, positives = [], [], 0
    for b, target in enumerate(targets):
        owner = assign(points, strides, target[:, :4])
        pos = owner >= 0
        cls_target = torch.zeros_like(logits[b])
        if pos.any():
            d = dist[b][:, pos].T
            p = points[pos]
            pred = torch.cat([p - d[:, :2], p + d[:, 2:]], 1)
            matched = target[owner[pos]]
            iou, g = giou(pred, matched[:, :4])
            box_losses.append((1 - g).sum())
            cls_target[matched[:, 4].long(), pos.nonzero().flatten()] = iou.detach().clamp(min=0.01)
            positives += int(pos.sum())
        # Quality focal loss: BCE towards the IoU-valued target, weighted by how wrong the score is.
        score = logits[b].sigmoid()
        bce = F.binary_cross_entropy_with_logits(logits[b], cls_target, reduction="none")
        cls_losses.append((bce * (score - cls_target).abs().pow(2)).sum())
    norm = max(positives, 1)
    box_loss = torch.stack(box_losses).sum() / norm if box_losses else dist.sum() * 0
    cls_loss = torch.stack(cls_losses).sum() / norm
    return cls_loss + 2.0 * box_loss, {"cls": cls_loss.item(), "box": box_loss.item(), "pos": positives}


# ----------------------------------------------------------------------------------------------------------------
# Validation (torch side, for progress reports; the shipped numbers come from evaluate_parts.py)


@dataclass(frozen=True, slots=True)
class _Pred:
    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int
    confidence: float


def decode(output: np.ndarray, conf: float = 0.25, iou: float = 0.45) -> list[_Pred]:
    """The same decoding the product's detector applies to a YOLOv8 output (best class, class-aware NMS)."""
    scores = output[4:]
    best = scores.max(0)
    keep = np.flatnonzero(best > conf)
    if keep.size == 0:
        return []
    cls = scores[:, keep].argmax(0)
    cx, cy, w, h = output[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
    chosen = np.asarray(cv2.dnn.NMSBoxesBatched(boxes, best[keep], cls.astype(np.int32), 0.0, iou)).reshape(-1)
    return [_Pred(float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 0] + boxes[i, 2]),
                  float(boxes[i, 1] + boxes[i, 3]), int(cls[i]), float(best[keep][i])) for i in chosen]


@torch.no_grad()
def validate(model: UltralyticsLayout, data: SceneSet) -> dict[str, float]:
    model.eval()
    preds, truths = [], []
    for start in range(0, data.count, 16):
        indices = np.arange(start, min(start + 16, data.count))
        images, targets = data.batch(indices, None)
        for out, target in zip(model(images).numpy(), targets):
            preds.append(decode(out))
            truths.append([GroundTruth(*map(float, t[:4]), int(t[4])) for t in target.numpy()])
    pr = precision_recall(preds, truths)
    return {"map50": mean_average_precision(preds, truths, 0.5, len(CLASS_NAMES)), "precision": pr.precision,
            "recall": pr.recall}


# ----------------------------------------------------------------------------------------------------------------
# Training and export


class Ema:
    """Exponential moving average of the weights (as Ultralytics): steadier than the last step's weights."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        import copy

        self.model = copy.deepcopy(model).eval()
        self.decay, self.updates = decay, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 500))  # ramps up so early averages are not stuck at init
        state = model.state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(state[name].detach(), alpha=1 - d)
            else:
                value.copy_(state[name])


def train(args: argparse.Namespace) -> UltralyticsLayout:
    recipe = RECIPES[args.version]
    epochs = args.epochs or recipe.epochs
    args.train_images = args.train_images or recipe.train_images
    torch.manual_seed(args.seed)
    cache = Path(args.cache_dir) if args.cache_dir else None
    train_set = SceneSet(TRAIN_SEED + args.seed, args.train_images, args.imgsz, cache)
    val_set = SceneSet(VAL_SEED + args.seed, args.val_images, args.imgsz, cache)

    model = UltralyticsLayout(PartsNet(recipe, len(CLASS_NAMES)), args.imgsz).to(memory_format=torch.channels_last)
    ema = Ema(model)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BatchNorm and biases
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0}],
                                  lr=recipe.lr)
    steps_per_epoch = args.train_images // args.batch
    total, warmup = epochs * steps_per_epoch, min(300, epochs * steps_per_epoch // 10)
    points, strides = anchor_points(args.imgsz)
    print(f"{args.version}: {sum(p.numel() for p in model.parameters())} parameters, {epochs} epochs x "
          f"{steps_per_epoch} steps of {args.batch}", flush=True)
    started = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        model.train()
        order = np.random.default_rng([args.seed, epoch]).permutation(args.train_images)
        flips = np.random.default_rng([args.seed, epoch, 1])
        for k in range(steps_per_epoch):
            lr = recipe.lr * min(1.0, (step + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / total)))
            for group in optimiser.param_groups:
                group["lr"] = lr
            images, targets = train_set.batch(order[k * args.batch:(k + 1) * args.batch], flips)
            dist, logits = model.net(images)
            loss, parts = detection_loss(dist, logits, targets, points, strides)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimiser.step()
            ema.update(model)
            step += 1
            if step % 50 == 0:
                print(f"epoch {epoch + 1} step {step}/{total} loss {loss.item():.3f} cls {parts['cls']:.3f} "
                      f"box {parts['box']:.3f} lr {lr:.2e} {time.perf_counter() - started:.0f} s", flush=True)
        scores = validate(ema.model, val_set)
        print(f"epoch {epoch + 1}: val mAP@0.5 {scores['map50']:.3f} P {scores['precision']:.3f} "
              f"R {scores['recall']:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"training took {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return ema.model


def export(model: UltralyticsLayout, args: argparse.Namespace) -> None:
    import onnx

    recipe = RECIPES[args.version]
    model = model.eval().to(memory_format=torch.contiguous_format)
    for module in model.modules():
        if isinstance(module, ConvBNAct):
            module.fuse()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, args.imgsz, args.imgsz)
    torch.onnx.export(model, (dummy,), str(out), input_names=["images"], output_names=["output0"],
                      opset_version=17, dynamo=False, do_constant_folding=True)
    proto = onnx.load(str(out))
    # Ultralytics' own keys and formatting, so the product (and other tools) read this model as a YOLOv8 export.
    stamp = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds: a fixed date gives a byte-identical file
    when = datetime.fromtimestamp(int(stamp), UTC) if stamp else datetime.now(UTC)
    metadata = {
        "description": f"Edge Console demo detector parts (parts-{args.version}): metal parts on a conveyor (synthetic)",
        "author": "Edge Console",
        "date": when.replace(tzinfo=None).isoformat(),
        "version": recipe.semver,
        "task": "detect",
        "stride": str(max(STRIDES)),
        "batch": "1",
        "imgsz": str([args.imgsz, args.imgsz]),
        "names": str(dict(enumerate(CLASS_NAMES))),
        "model_name": "parts",  # one model line: parts-v1.onnx is parts 1.0.0, parts-v2.onnx parts 2.0.0
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "edge-console models/train_parts.py"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))

    import onnxruntime as ort  # a last check that the file runs and matches torch

    sample = torch.rand(1, 3, args.imgsz, args.imgsz)
    with torch.no_grad():
        expected = model(sample).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": sample.numpy()})[0]
    print(f"exported {out} ({out.stat().st_size / 1e6:.2f} MB), output {list(got.shape)}, "
          f"max |onnx - torch| {np.abs(got - expected).max():.2e}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", choices=sorted(RECIPES), required=True)
    parser.add_argument("--out", help="ONNX file to write (default models/parts-<version>.onnx)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (for a quick smoke run)")
    parser.add_argument("--train-images", type=int, help="override the recipe's training set size")
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--imgsz", type=int, default=IMGSZ)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (1 keeps a shared box usable)")
    parser.add_argument("--seed", type=int, default=0, help="offsets the data streams and initialisation")
    parser.add_argument("--cache-dir", help="keep rendered scenes here so later runs skip rendering")
    args = parser.parse_args(argv)
    args.out = args.out or str(REPO / "models" / f"parts-{args.version}.onnx")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    export(train(args), args)


if __name__ == "__main__":
    main()
