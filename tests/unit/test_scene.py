import numpy as np
import pytest

from edge_console.core.scene import conveyor as scene
from edge_console.core.scene import parts as scene_parts
from edge_console.core.scene.conveyor import CLASS_NAMES, ConveyorScene, GroundTruth, render_scene


def still(seed: int, width: int = 640, height: int = 480):
    return render_scene(np.random.default_rng(seed), width, height)


def test_classes_are_the_documented_four_in_order():
    assert CLASS_NAMES == ("bolt", "nut", "washer", "bracket")
    assert GroundTruth(0, 0, 1, 1, 2).class_name == "washer"


def test_render_scene_is_deterministic_per_seed():
    a_img, a_gt = still(7)
    b_img, b_gt = still(7)
    c_img, _ = still(8)
    assert np.array_equal(a_img, b_img) and a_gt == b_gt
    assert not np.array_equal(a_img, c_img)


@pytest.mark.parametrize("size", [(640, 480), (320, 240), (800, 450), (300, 500)])
def test_image_format_and_boxes_inside_the_frame(size):
    width, height = size
    for seed in range(8):
        image, truths = still(seed, width, height)
        assert image.shape == (height, width, 3) and image.dtype == np.uint8
        for t in truths:
            assert 0 <= t.x1 < t.x2 <= width and 0 <= t.y1 < t.y2 <= height
            assert 0 <= t.class_id < len(CLASS_NAMES)
            assert t.x2 - t.x1 >= 4 and t.y2 - t.y1 >= 4  # a part, not a speck


def test_every_class_appears_over_many_scenes():
    seen = {t.class_id for seed in range(30) for t in still(seed)[1]}
    assert seen == set(range(len(CLASS_NAMES)))


def test_boxes_sit_on_drawn_parts_not_on_bare_belt():
    # Parts have edges, holes, highlights and shadows; bare belt is smooth. So the grey-level spread inside
    # ground-truth boxes must clearly exceed the spread of same-sized belt patches that no box touches.
    rng = np.random.default_rng(123)
    inside, outside = [], []
    for seed in range(20):
        image, truths = still(seed)
        grey = image.mean(axis=2)
        covered = np.zeros(grey.shape, bool)
        for t in truths:
            covered[int(t.y1):int(t.y2), int(t.x1):int(t.x2)] = True
        for t in truths:
            inside.append(grey[int(t.y1):int(t.y2), int(t.x1):int(t.x2)].std())
            w, h = int(t.x2 - t.x1), int(t.y2 - t.y1)
            for _ in range(20):  # a free patch of the same size; the rails are left out as they are not belt
                x, y = int(rng.integers(0, 640 - w)), int(rng.integers(40, 440 - h))
                if not covered[max(0, y - 10):y + h + 10, max(0, x - 10):x + w + 10].any():
                    outside.append(grey[y:y + h, x:x + w].std())
                    break
    assert len(inside) > 40 and len(outside) > 20
    assert np.median(inside) > 2 * np.median(outside)


def test_box_is_tight_around_the_drawn_part():
    # White part on a black frame, without shadow: the box must be exactly the extent of the changed pixels.
    rng = np.random.default_rng(5)
    light = scene_parts.random_light(rng)
    for class_id in range(len(CLASS_NAMES)):
        sprite = scene_parts.render_sprite(rng, class_id, 80.0, float(rng.uniform(0, 6.28)), light)
        sprite.shadow[:] = 0
        sprite.color[:] = 255
        frame = np.zeros((200, 200, 3), np.uint8)
        (truth,) = scene._composite(frame, [scene._Placed(sprite, 100.0, 100.0)])
        ys, xs = np.nonzero(frame[..., 0] > 127)  # the part's pixels are those at least half covered
        assert (truth.x1, truth.y1, truth.x2, truth.y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert truth.class_id == class_id


def test_mostly_hidden_or_off_frame_parts_have_no_box():
    rng = np.random.default_rng(9)
    light = scene_parts.random_light(rng)
    sprite = scene_parts.render_sprite(rng, 2, 80.0, 0.0, light)  # a washer, about 40 px across
    frame = np.zeros((200, 200, 3), np.uint8)
    cover = scene_parts.render_sprite(rng, 3, 160.0, 0.0, light)  # a large bracket on top of it
    placed = [scene._Placed(sprite, -15.0, 100.0),  # mostly left of the frame
              scene._Placed(sprite, 100.0, 100.0), scene._Placed(cover, 100.0, 100.0)]
    truths = scene._composite(frame, placed)
    assert [t.class_id for t in truths] in ([3], [2, 3])
    assert all(t.x1 >= 0 for t in truths)


def test_conveyor_frames_are_a_pure_function_of_seed_and_index():
    a, b = ConveyorScene(seed=4), ConveyorScene(seed=4)
    f10, g10 = a.frame(10)
    a.frame(500)  # visiting other frames first must not change frame 10
    again, g_again = a.frame(10)
    other, g_other = b.frame(10)
    assert np.array_equal(f10, again) and np.array_equal(f10, other)
    assert g10 == g_again == g_other
    assert not np.array_equal(f10, ConveyorScene(seed=5).frame(10)[0])


def test_conveyor_parts_ride_the_belt_at_its_speed():
    speed = 3.0
    conveyor = ConveyorScene(width=640, height=480, seed=1, belt_speed_px_per_frame=speed)
    image, before = conveyor.frame(100)
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    _, after = conveyor.frame(110)
    # A box well inside the frame in both frames moved right by 10 frames x speed, the same class, same rows.
    moved = 0
    for t in before:
        if t.x1 > 40 and t.x2 < 640 - 80:
            match = [u for u in after if u.class_id == t.class_id and abs(u.y1 - t.y1) < 1e-6
                     and abs(u.x1 - t.x1 - 10 * speed) <= 1]
            moved += bool(match)
    assert moved >= 2


def test_conveyor_keeps_bringing_new_parts():
    conveyor = ConveyorScene(seed=2)
    counts = [len(conveyor.frame(i)[1]) for i in range(0, 20000, 500)]
    assert min(counts) >= 1 and np.mean(counts) >= 3
    # Parts enter on the left: over a long run some box touches the left edge.
    assert any(t.x1 == 0 for i in range(0, 400, 7) for t in conveyor.frame(i)[1])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="at least"):
        render_scene(np.random.default_rng(0), 10, 10)
    with pytest.raises(ValueError, match="seed"):
        ConveyorScene(seed=-1)
    with pytest.raises(ValueError, match="speed"):
        ConveyorScene(belt_speed_px_per_frame=0)
