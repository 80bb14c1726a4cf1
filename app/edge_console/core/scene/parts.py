"""Drawing one part (bolt, nut, washer, bracket) as a shaded sprite: shapes, materials, lighting, shadow.

Split from scene.py, which composes sprites on the belt: this file knows what a part looks like, that one
where parts are and what the camera does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# Materials and lighting

@dataclass(frozen=True, slots=True)
class _Material:
    albedo_bgr: tuple[float, float, float]
    specular: float  # strength of the sharp highlight; metals high, paint low
    shininess: float
    metallic: float  # how much the highlight takes the albedo's tint (brass/zinc reflect yellow)


_MATERIALS = {
    "bright_steel": _Material((0.70, 0.70, 0.68), 0.9, 40.0, 0.2),
    "dull_steel": _Material((0.52, 0.53, 0.53), 0.45, 18.0, 0.2),
    "zinc_yellow": _Material((0.38, 0.64, 0.76), 0.7, 30.0, 0.6),
    "black_oxide": _Material((0.17, 0.17, 0.18), 0.55, 25.0, 0.1),
    "brass": _Material((0.28, 0.58, 0.72), 0.8, 35.0, 0.7),
    "galvanized": _Material((0.62, 0.63, 0.60), 0.5, 15.0, 0.2),
    "painted_blue": _Material((0.62, 0.36, 0.16), 0.2, 10.0, 0.0),
}
# Which finishes each class comes in: overlapping on purpose, so a detector has to learn shape, not colour.
_CLASS_MATERIALS = (
    {"bright_steel": 0.35, "dull_steel": 0.25, "black_oxide": 0.25, "zinc_yellow": 0.15},
    {"bright_steel": 0.30, "dull_steel": 0.25, "zinc_yellow": 0.25, "black_oxide": 0.10, "brass": 0.10},
    {"bright_steel": 0.40, "dull_steel": 0.25, "zinc_yellow": 0.15, "brass": 0.20},
    {"galvanized": 0.40, "dull_steel": 0.25, "painted_blue": 0.20, "bright_steel": 0.15},
)


def random_light(rng: np.random.Generator) -> np.ndarray:
    """Unit vector towards the lamp (x right, y down, z towards the camera); high enough to keep shadows short."""
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = math.radians(rng.uniform(40, 75))
    return np.array([math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                     math.sin(elevation)], np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Part geometry: each class as outline polygons, holes, shaded faces and detail lines, in part-local pixels

@dataclass(slots=True)
class _Shape:
    outlines: list[np.ndarray]
    holes: list[np.ndarray]
    faces: list[tuple[np.ndarray, float]]  # (polygon, brightness multiplier)
    lines: list[tuple[np.ndarray, np.ndarray, float, float]]  # (p0, p1, thickness px, brightness multiplier)
    bevel: float  # px over which the edge rounds off: a cylinder's radius for a bolt shaft, ~1 px for sheet metal
    thickness: float  # px the part stands off the belt, for its shadow
    radial_brushing: bool = False


def _circle(cx: float, cy: float, r: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _bolt(rng: np.random.Generator, size: float) -> _Shape:
    """A hex bolt lying on its side: head seen across its flats, threaded shaft with a chamfered tip."""
    d = size * rng.uniform(0.16, 0.23)
    head_len, head_h = 0.7 * d, 1.7 * d
    x0 = -size / 2
    xh = x0 + head_len
    x1 = size / 2
    c = 0.12 * d  # chamfers
    head = np.array([[x0, -head_h / 2 + c], [x0 + c, -head_h / 2], [xh, -head_h / 2], [xh, head_h / 2],
                     [x0 + c, head_h / 2], [x0, head_h / 2 - c]])
    shaft = np.array([[xh - 1, -d / 2], [x1 - c * 2, -d / 2], [x1, -d / 2 + c * 2], [x1, d / 2 - c * 2],
                      [x1 - c * 2, d / 2], [xh - 1, d / 2]])
    faces = [(_rect(x0, -head_h / 4, xh, head_h / 4), rng.uniform(1.05, 1.25)),
             (_rect(x0, -head_h / 2, xh, -head_h / 4), rng.uniform(0.7, 0.9))]
    lines = []
    pitch = max(2.2, 0.16 * d)
    thread_start = x1 - (x1 - xh) * rng.uniform(0.45, 1.0)
    x = x1 - 2 * c
    while x > thread_start:
        lines.append((np.array([x, -d / 2]), np.array([x - 0.35 * pitch, d / 2]), 1.0, 0.6))
        x -= pitch
    return _Shape([head, shaft], [], faces, lines, bevel=d / 2, thickness=0.8 * d)


def _nut(rng: np.random.Generator, size: float) -> _Shape:
    """A hex nut seen along its axis: hexagon, chamfer ring, threaded hole showing the belt through it."""
    r = size * rng.uniform(0.23, 0.30)  # across corners / 2
    t = np.arange(6) * math.pi / 3
    hexagon = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    hole = r * rng.uniform(0.48, 0.56)
    faces = [(hexagon, 0.8), (_circle(0, 0, 0.87 * r * 0.97), 1.0 / 0.8 * rng.uniform(0.95, 1.1))]
    inner_thread = [(_circle(0, 0, hole * 1.12), 0.55)]
    return _Shape([hexagon], [_circle(0, 0, hole)], faces + inner_thread, [], bevel=max(1.0, 0.1 * r),
                  thickness=0.8 * r)


def _washer(rng: np.random.Generator, size: float) -> _Shape:
    """A flat washer: a thin ring with a large hole, brushed in circles as pressed steel is."""
    r = size * rng.uniform(0.22, 0.32)
    hole = r * rng.uniform(0.48, 0.58)
    return _Shape([_circle(0, 0, r, 56)], [_circle(0, 0, hole, 40)], [], [], bevel=max(1.0, 0.08 * r),
                  thickness=0.12 * r, radial_brushing=True)


def _bracket(rng: np.random.Generator, size: float) -> _Shape:
    """A sheet-metal L or T bracket lying flat, with mounting holes and one bent-up flange shaded differently."""
    w = size * rng.uniform(0.22, 0.30)
    a = size * rng.uniform(0.85, 1.1)
    b = size * rng.uniform(0.5, 0.85)
    if rng.random() < 0.65:  # L: long arm along x, short arm down from its left end
        outline = np.array([[0, 0], [a, 0], [a, w], [w, w], [w, b], [0, b]], np.float64)
        holes = [_circle(a - w * 0.8, w / 2, w * 0.2), _circle(w / 2, b - w * 0.8, w * 0.2)]
        flange = _rect(a - w * 1.4, 0, a, w)
    else:  # T: bar along x, stem down from its middle
        outline = np.array([[0, 0], [a, 0], [a, w], [(a + w) / 2, w], [(a + w) / 2, b], [(a - w) / 2, b],
                            [(a - w) / 2, w], [0, w]], np.float64)
        holes = [_circle(w * 0.6, w / 2, w * 0.2), _circle(a - w * 0.6, w / 2, w * 0.2),
                 _circle(a / 2, b - w * 0.6, w * 0.2)]
        flange = _rect(a / 2 - w / 2, w, a / 2 + w / 2, b)
    centre = outline.mean(axis=0)
    move = [outline - centre] + [h - centre for h in holes]
    faces = [(flange - centre, rng.choice([0.72, 1.25]))]
    return _Shape([move[0]], move[1:], faces, [], bevel=1.2, thickness=max(1.5, 0.04 * size))


_SHAPE_BUILDERS = (_bolt, _nut, _washer, _bracket)


# ----------------------------------------------------------------------------------------------------------------
# Rendering one part into a small sprite (colour, coverage, shadow), once per part


@dataclass(slots=True)
class Sprite:
    class_id: int
    color: np.ndarray  # h x w x 3 float32, 0..255
    alpha: np.ndarray  # h x w float32 coverage 0..1 (anti-aliased edges)
    shadow: np.ndarray  # h x w float32, fraction of light the part takes away from the belt under it
    anchor: tuple[float, float]  # where the part's centre sits in sprite pixels
    area: int  # pixels the part covers (alpha > 0.5), to tell how much of it is visible


def _to_fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * 16).astype(np.int32)  # cv2 draws sub-pixel with shift=4


def render_sprite(rng: np.random.Generator, class_id: int, size: float, angle: float, light: np.ndarray) -> Sprite:
    """Draw one part at its pose with shading, highlights and shadow; done once per part, then only blended."""
    shape = _SHAPE_BUILDERS[class_id](rng, size)
    material = _MATERIALS[rng.choice(list(_CLASS_MATERIALS[class_id]), p=list(_CLASS_MATERIALS[class_id].values()))]
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = np.concatenate(shape.outlines)
    corners = pts @ rot.T
    shadow_shift = shape.thickness * light[:2] / max(light[2], 0.3) * -1.0  # shadows fall away from the lamp
    blur = max(0.8, 0.03 * size)
    margin = int(math.ceil(np.abs(shadow_shift).max() + 3 * blur + 3))
    lo = corners.min(axis=0)
    w, h = (np.ceil(corners.max(axis=0) - lo) + 2 * margin).astype(int)
    offset = margin - lo

    def place(p: np.ndarray) -> np.ndarray:
        return _to_fixed(p @ rot.T + offset)

    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [place(p) for p in shape.outlines], 255, cv2.LINE_AA, 4)
    for hole in shape.holes:
        cv2.fillPoly(mask, [place(hole)], 0, cv2.LINE_AA, 4)
    alpha = mask.astype(np.float32) / 255.0

    # Faces and details as a brightness map (128 = 1.0), drawn anti-aliased in 8 bits.
    faces = np.full((h, w), 128, np.uint8)
    for poly, mult in shape.faces:
        cv2.fillPoly(faces, [place(poly)], int(min(255, 128 * mult)), cv2.LINE_AA, 4)
    for p0, p1, thick, mult in shape.lines:
        a, b = place(p0[None])[0], place(p1[None])[0]
        cv2.line(faces, tuple(int(v) for v in a), tuple(int(v) for v in b), int(128 * mult),
                 max(1, int(round(thick))), cv2.LINE_AA, 4)
    brightness = faces.astype(np.float32) / 128.0

    # Rounded edges from the distance to the outline: a cylinder for a bolt shaft, a chamfer for flat parts.
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    t = np.clip(dist / shape.bevel, 0, 1)
    height = cv2.GaussianBlur(shape.bevel * np.sqrt(1 - (1 - t) ** 2), (0, 0), 0.7)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8
    norm = np.sqrt(gx * gx + gy * gy + 1)
    n_dot_l = (-gx * light[0] - gy * light[1] + light[2]) / norm
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    n_dot_h = np.clip((-gx * half[0] - gy * half[1] + half[2]) / norm, 0, 1)
    diffuse = 0.35 + 0.65 * np.clip(n_dot_l, 0, 1)
    specular = material.specular * n_dot_h ** material.shininess

    # Metal mirrors its surroundings: a soft gradient across the part plus a broad streak highlight.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = offset
    env_dir = rng.uniform(0, 2 * math.pi)
    env = 1 + 0.25 * ((xx - cx) * math.cos(env_dir) + (yy - cy) * math.sin(env_dir)) / max(size / 2, 1)
    sx, sy = rng.uniform(-0.25, 0.25, 2) * size
    streak_dir = rng.uniform(0, math.pi)
    along = (xx - cx - sx) * math.cos(streak_dir) + (yy - cy - sy) * math.sin(streak_dir)
    across = -(xx - cx - sx) * math.sin(streak_dir) + (yy - cy - sy) * math.cos(streak_dir)
    streak = 0.5 * material.specular * np.exp(-(along / (0.35 * size)) ** 2 - (across / (0.07 * size)) ** 2)
    grain = 1 + 0.05 * cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.6)
    if shape.radial_brushing:
        radius = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        grain *= 1 + 0.06 * np.sin(radius * rng.uniform(1.5, 3.0))
    shade = brightness * diffuse * np.clip(env, 0.6, 1.4) * grain
    albedo = np.array(material.albedo_bgr, np.float32) * rng.uniform(0.9, 1.1)
    highlight_tint = (1 - material.metallic) + material.metallic * albedo / albedo.max()
    color = 255 * (albedo * shade[..., None] + highlight_tint * (specular + streak)[..., None])
    np.clip(color, 0, 255, out=color)

    shadow = cv2.GaussianBlur(alpha, (0, 0), blur)
    shadow = cv2.warpAffine(shadow, np.float32([[1, 0, shadow_shift[0]], [0, 1, shadow_shift[1]]]), (w, h))
    shadow *= 0.35 + 0.25 * min(1.0, shape.thickness / 6)
    return Sprite(class_id, color.astype(np.float32), alpha, shadow, (float(cx), float(cy)), int((mask > 127).sum()))
