"""Synthetic industrial-inspection scenes: metal parts riding a conveyor belt, with exact ground-truth boxes.

Why this exists: the simulator's camera (`edge-agent simulate`), the demo models' training data and the tests all
need camera-like frames whose right answer is known, without shipping images or a real camera. It depends only
on numpy and OpenCV, so it runs on a device that has no torch.

Two entry points:
- `render_scene` draws one random still (training data, evaluation sets, tests);
- `ConveyorScene` is an endless, deterministic animation (frame i is a pure function of seed and i) that parts
  enter from the left and cross at belt speed; it caches each part's rendering so it stays cheap per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge_console.core.scene.parts import Sprite, random_light, render_sprite

CLASS_NAMES: tuple[str, ...] = ("bolt", "nut", "washer", "bracket")
MIN_VISIBLE_FRACTION = 0.5  # parts less visible than this (off-frame or hidden) are left out of the ground truth


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """A part's true box in frame pixels: x1, y1 inclusive top-left, x2, y2 exclusive bottom-right of its pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


# ----------------------------------------------------------------------------------------------------------------
# Belt, lighting and camera effects


_BELT_COLOURS = (((62, 62, 64), 0.6), ((58, 108, 52), 0.25), ((150, 152, 150), 0.15))  # rubber, green PVC, grey PU


def _belt_texture(rng: np.random.Generator, width: int, height: int, periodic: bool) -> np.ndarray:
    """Belt surface: mottling, grain, fibres along the travel, scratches, stains and laced seams (BGR uint8).

    With periodic=True the texture wraps horizontally, so an endless belt can be scrolled through it seamlessly.
    """
    colours, weights = zip(*_BELT_COLOURS)
    base = np.array(colours[rng.choice(len(colours), p=weights)], np.float32) * rng.uniform(0.85, 1.15)

    def noise(cell_x: int, cell_y: int) -> np.ndarray:
        """Smooth unit noise with features about cell_x by cell_y pixels, drawn at low resolution and scaled up."""
        small_w, small_h = max(2, width // cell_x), max(2, height // cell_y)
        n = rng.standard_normal((small_h, small_w)).astype(np.float32)
        if periodic:  # tile before resizing so both ends of the strip interpolate towards the same neighbours
            wide = cv2.resize(np.hstack([n, n, n]), (3 * width, height), interpolation=cv2.INTER_CUBIC)
            n = wide[:, width:2 * width]
        else:
            n = cv2.resize(n, (width, height), interpolation=cv2.INTER_CUBIC)
        return n / max(float(n.std()), 1e-6)

    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))  # see _sensor_noise: OpenCV's generator is the fast one
    grain = np.empty((height, width), np.float32)
    cv2.randn(grain, 0.0, 1.0)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * 2.0  # the blur leaves about half the standard deviation
    shade = 1 + 0.05 * noise(40, 40) + 0.04 * grain + 0.03 * noise(24, 1)
    for _ in range(int(rng.integers(0, 4))):  # stains: soft dark blotches
        axes = (int(rng.integers(8, 40)), int(rng.integers(5, 25)))
        pad = axes[0] + 20
        stain = np.zeros((2 * pad, 2 * pad), np.float32)
        cv2.ellipse(stain, (pad, pad), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        stain = cv2.GaussianBlur(stain, (0, 0), 6) * rng.uniform(0.05, 0.15)
        x0, y0 = int(rng.integers(0, width)) - pad, int(rng.integers(0, height)) - pad
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + 2 * pad, width), min(y0 + 2 * pad, height)
        if fx0 < fx1 and fy0 < fy1:
            shade[fy0:fy1, fx0:fx1] -= stain[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    texture = np.clip(shade[..., None] * base, 0, 255).astype(np.uint8)

    for _ in range(int(rng.integers(6, 30))):  # scratches, mostly along the direction of travel
        angle = rng.normal(0, 0.2) if rng.random() < 0.75 else rng.uniform(0, math.pi)
        length = rng.uniform(15, 180)
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        tone = tuple(float(min(255, c + rng.uniform(12, 35))) for c in base)
        cv2.line(texture, (int(x0 * 16), int(y0 * 16)), (int(x1 * 16), int(y1 * 16)), tone, 1, cv2.LINE_AA, 4)

    seams = 1 if periodic else int(rng.integers(0, 2))
    for _ in range(seams):  # a laced joint across the belt: a darker band with a row of metal clips
        x = int(rng.integers(0, width - 12))
        texture[:, x:x + 8] = (texture[:, x:x + 8] * 0.75).astype(np.uint8)
        for y in range(int(rng.integers(2, 8)), height, 11):
            cv2.rectangle(texture, (x + 1, y), (x + 6, y + 3), (150, 150, 150), -1)
    return texture


def _rails(rng: np.random.Generator, width: int, rail_h: int) -> np.ndarray:
    """A brushed steel guide rail strip along one belt edge (static: the belt slides past it)."""
    n = cv2.GaussianBlur(rng.standard_normal((rail_h, width)).astype(np.float32), (0, 0), 15, sigmaY=0.5)
    profile = 0.75 + 0.35 * np.sin(np.linspace(0.3, 2.8, rail_h, dtype=np.float32))[:, None]
    grey = np.clip(135 * profile * (1 + 0.06 * n), 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def _illumination(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Per-pixel light level (uint8, 128 = 1.0): a lamp's falloff plus a colour cast, applied with cv2.multiply.

    Computed on a coarse grid and scaled up: the falloff is smooth, and a full-resolution square root per pixel
    would cost more than the rest of a frame.
    """
    gw, gh = max(2, width // 8), max(2, height // 8)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    cx, cy = rng.uniform(-0.2, 1.2) * gw, rng.uniform(-0.2, 1.2) * gh
    falloff = rng.uniform(0.0, 0.35)
    level = 1 - falloff * np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / math.hypot(gw, gh)
    tint = 1 + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    coarse = np.clip(128 * level[..., None] * tint, 0, 255).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _sensor_noise(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """Gaussian sensor noise as int16, added with one saturating cv2.add.

    OpenCV's generator is several times faster than numpy's here; seeding it from `rng` keeps the result a
    function of `rng` alone (OpenCV's generator state is per thread, so threads cannot disturb each other).
    """
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    noise = np.empty((height, width, 3), np.int16)
    cv2.randn(noise, (0.0, 0.0, 0.0), (sigma, sigma, sigma))
    return noise


@dataclass(slots=True)
class _Placed:
    sprite: Sprite
    x: float  # where the part's centre is in the frame
    y: float


def _composite(frame: np.ndarray, parts: list[_Placed]) -> list[GroundTruth]:
    """Draw parts in order (later ones on top) and return boxes around what stays visible of each."""
    height, width = frame.shape[:2]
    owner = np.full((height, width), -1, np.int16)
    regions = []
    for index, part in enumerate(parts):
        sp = part.sprite
        sh, sw = sp.alpha.shape
        x0, y0 = int(round(part.x - sp.anchor[0])), int(round(part.y - sp.anchor[1]))
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + sw, width), min(y0 + sh, height)
        regions.append((fx0, fy0, fx1, fy1))
        if fx0 >= fx1 or fy0 >= fy1:
            continue
        sl = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
        alpha, shadow = sp.alpha[sl][..., None], sp.shadow[sl][..., None]
        roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        roi = roi * (1 - shadow) * (1 - alpha) + sp.color[sl] * alpha
        frame[fy0:fy1, fx0:fx1] = roi.astype(np.uint8)
        owner[fy0:fy1, fx0:fx1][sp.alpha[sl] > 0.5] = index
    truths = []
    for index, (part, (fx0, fy0, fx1, fy1)) in enumerate(zip(parts, regions)):
        if fx0 >= fx1 or fy0 >= fy1:
            continue
        ys, xs = np.nonzero(owner[fy0:fy1, fx0:fx1] == index)
        if len(xs) < MIN_VISIBLE_FRACTION * part.sprite.area:
            continue
        truths.append(GroundTruth(float(fx0 + xs.min()), float(fy0 + ys.min()), float(fx0 + xs.max() + 1),
                                  float(fy0 + ys.max() + 1), part.sprite.class_id))
    return truths


def _part_size(rng: np.random.Generator, height: int) -> float:
    return float(height * rng.uniform(0.12, 0.24))


# ----------------------------------------------------------------------------------------------------------------
# Public API


def render_scene(rng: np.random.Generator, width: int = 640, height: int = 480, *,
                 max_parts: int = 8) -> tuple[np.ndarray, list[GroundTruth]]:
    """One random still of 1..max_parts parts on a belt: BGR uint8 image (height x width x 3) and its true boxes.

    Everything random comes from `rng`, so a seeded generator gives the same image on every machine with the
    same numpy and OpenCV. Parts may touch and partly overlap; any part less than half visible (hidden or off the
    frame) is still drawn but left out of the boxes, as a camera user would not label it either.
    """
    if width < 32 or height < 32:
        raise ValueError(f"scene must be at least 32x32 pixels, got {width}x{height}")
    rail_h = int(rng.uniform(0.04, 0.07) * height) if rng.random() < 0.5 else 0
    frame = np.empty((height, width, 3), np.uint8)
    frame[rail_h:height - rail_h] = _belt_texture(rng, width, height - 2 * rail_h, periodic=False)
    if rail_h:
        frame[:rail_h] = _rails(rng, width, rail_h)
        frame[height - rail_h:] = _rails(rng, width, rail_h)[::-1]

    light = random_light(rng)
    placed: list[_Placed] = []
    for _ in range(int(rng.integers(1, max_parts + 1))):
        class_id = int(rng.integers(len(CLASS_NAMES)))
        sprite = render_sprite(rng, class_id, _part_size(rng, height), rng.uniform(0, 2 * math.pi), light)
        radius = 0.5 * math.hypot(*sprite.alpha.shape) * 0.7
        for _attempt in range(10):  # keep overlaps partial: reject centres too close to an earlier part
            x = rng.uniform(-0.05, 1.05) * width
            y = rng.uniform(rail_h + 0.3 * radius, height - rail_h - 0.3 * radius)
            if all(math.hypot(x - p.x, y - p.y) > 0.65 * (radius + 0.35 * math.hypot(*p.sprite.alpha.shape))
                   for p in placed):
                placed.append(_Placed(sprite, x, y))
                break
    truths = _composite(frame, placed)

    if rng.random() < 0.35:  # motion blur along the belt
        k = int(rng.integers(2, 10))
        frame = cv2.blur(frame, (k, 1))
    if rng.random() < 0.25:  # slightly out of focus
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.6, 1.5))
    frame = cv2.multiply(frame, _illumination(rng, width, height), scale=rng.uniform(0.55, 1.35) / 128)
    noise = _sensor_noise(rng, height, width, rng.uniform(1.0, 7.0))
    return cv2.add(frame, noise, dtype=cv2.CV_8U), truths


class ConveyorScene:
    """An endless conveyor seen from above: parts enter on the left and ride the belt across at a steady speed.

    `frame(i)` is a pure function of (seed, i): the same index always gives the same pixels and boxes, in any
    order, so the simulator can seek, replay or run several cameras without shared state. Each part's drawing
    is made once and cached; a frame costs a belt slice, a few small blends and three whole-frame cv2 ops.
    """

    _SLOT_SPACING = 0.27  # of the frame height: belt length between consecutive parts' spawn slots
    _NOISE_BANK = 8

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, belt_speed_px_per_frame: float = 4.0):
        if width < 64 or height < 64:
            raise ValueError(f"scene must be at least 64x64 pixels, got {width}x{height}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if belt_speed_px_per_frame <= 0:
            raise ValueError(f"belt speed must be positive, got {belt_speed_px_per_frame}")
        self.width, self.height, self.seed = width, height, seed
        self.speed = float(belt_speed_px_per_frame)
        rng = np.random.default_rng([seed, 0])
        self._rail_h = int(0.05 * height)
        belt_h = height - 2 * self._rail_h
        self._period = max(2 * width, 1280)
        texture = _belt_texture(rng, self._period, belt_h, periodic=True)
        self._belt = np.hstack([texture, texture[:, :width]])  # slicing any window needs no wrap-around
        self._background = np.empty((height, width, 3), np.uint8)
        self._background[:self._rail_h] = _rails(rng, width, self._rail_h)
        self._background[height - self._rail_h:] = _rails(rng, width, self._rail_h)[::-1]
        self._light = random_light(rng)
        self._illumination = _illumination(rng, width, height)
        sigma = rng.uniform(2.0, 4.0)
        self._noise = [_sensor_noise(rng, height, width, sigma) for _ in range(self._NOISE_BANK)]
        self._flicker_phase = rng.uniform(0, 2 * math.pi)
        self._slot_px = self._SLOT_SPACING * height
        self._max_reach = 0.5 * height  # no sprite reaches further than this from its centre
        self._cache: dict[int, list[_Placed]] = {}

    def frame(self, index: int) -> tuple[np.ndarray, list[GroundTruth]]:
        """Frame `index` (BGR uint8, height x width x 3) and the boxes of the parts visible in it."""
        travelled = self.speed * index
        shift = int(round(travelled)) % self._period
        frame = self._background.copy()
        start = (self._period - shift) % self._period
        frame[self._rail_h:self.height - self._rail_h] = self._belt[:, start:start + self.width]

        # Slot k's parts sit at belt position k * slot_px and are at x = travelled - k * slot_px in this frame.
        first = math.floor((travelled - self.width - self._max_reach) / self._slot_px) - 1
        last = math.ceil((travelled + self._max_reach) / self._slot_px) + 1
        placed = []
        for slot in range(first, last + 1):  # a fixed order, so overlaps look the same in every frame
            for part in self._slot_parts(slot):
                x = part.x + round(travelled)
                if -self._max_reach < x < self.width + self._max_reach:
                    placed.append(_Placed(part.sprite, x, part.y))
        truths = _composite(frame, placed)

        blur = int(round(self.speed * 0.6))  # the belt moves during the exposure
        if blur >= 2:
            frame = cv2.blur(frame, (blur, 1))
        # Mains flicker and a slow drift of the plant lighting, both pure functions of the index.
        gain = 1 + 0.12 * math.sin(2 * math.pi * index / 450 + self._flicker_phase) + 0.03 * math.sin(index * 2.1)
        frame = cv2.multiply(frame, self._illumination, scale=gain / 128)
        noise = self._noise[(index * 5 + 3) % self._NOISE_BANK]
        return cv2.add(frame, noise, dtype=cv2.CV_8U), truths

    def _slot_parts(self, slot: int) -> list[_Placed]:
        """The parts of one spawn slot, x relative to the belt's travel, drawn once and kept while on screen."""
        cached = self._cache.get(slot)
        if cached is not None:
            return cached
        code = 2 * slot if slot >= 0 else -2 * slot - 1  # SeedSequence takes non-negative words only
        rng = np.random.default_rng([self.seed, 1, code])
        lo, hi = self._rail_h, self.height - self._rail_h
        lanes = [(lo, hi)] if rng.random() < 0.7 else [(lo, (lo + hi) / 2), ((lo + hi) / 2, hi)]
        parts = []
        for lane_lo, lane_hi in lanes:
            class_id = int(rng.integers(len(CLASS_NAMES)))
            sprite = render_sprite(rng, class_id, _part_size(rng, self.height), rng.uniform(0, 2 * math.pi),
                                    self._light)
            margin = min(0.35 * max(sprite.alpha.shape), (lane_hi - lane_lo) / 2)
            x = -slot * self._slot_px + rng.uniform(-0.3, 0.3) * self._slot_px
            parts.append(_Placed(sprite, x, rng.uniform(lane_lo + margin, lane_hi - margin)))
        if len(self._cache) > 64:  # parts far behind have left the frame; forget the oldest drawings
            for old in sorted(self._cache)[:16]:
                del self._cache[old]
        self._cache[slot] = parts
        return parts
