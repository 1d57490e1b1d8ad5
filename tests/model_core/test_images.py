"""model_core.images: the value range both ways, one-hot labels and grids, on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.images import (
    VALUE_RANGE,
    enlarge,
    from_value_range,
    grid_shape,
    make_grid,
    one_hot,
    to_value_range,
)


def test_uint8_to_value_range_maps_0_and_255_to_the_ends() -> None:
    x = to_value_range(np.array([[0, 51, 255]], np.uint8))
    assert x.dtype == np.float32 and x.shape == (1, 3)
    assert x[0, 0] == -1.0 and x[0, 2] == 1.0
    assert abs(float(x[0, 1]) - (-0.6)) < 1e-7  # 51 * 2 / 255 - 1
    assert to_value_range(np.array([0, 255, 51], np.uint8), (0.0, 10.0)).tolist() == pytest.approx([0, 10, 2])


def test_uint8_to_value_range_is_the_manifests_formula_to_the_bit() -> None:
    """u8 * ((high - low) / 255) + low in float32: what the service has fed every bundle."""
    u8 = np.arange(256, dtype=np.uint8)
    expected = u8.astype(np.float32) * np.float32(2 / 255) + np.float32(-1)
    np.testing.assert_array_equal(to_value_range(u8), expected)


def test_unit_floats_to_value_range() -> None:
    x = to_value_range(np.array([0.0, 0.25, 1.0]), (-1.0, 1.0))
    assert x.dtype == np.float32 and x.tolist() == [-1.0, -0.5, 1.0]


def test_other_pixel_dtypes_are_refused() -> None:
    with pytest.raises(TypeError, match="int64"):
        to_value_range(np.array([0, 255]))
    with pytest.raises(TypeError, match="int16"):
        from_value_range(np.zeros(2, np.float32), dtype=np.int16)


def test_from_value_range_rounds_clips_and_sends_nan_to_low() -> None:
    images = np.array([-1.0, 0.0, 1.0, 0.004, 0.003, 5.0, -5.0, np.inf, -np.inf, np.nan], np.float32)
    # 0.0 -> 127.5 -> 128 (round half to even); 0.004 -> 128.01 -> 128; 0.003 -> 127.88 -> 128
    assert from_value_range(images).tolist() == [0, 128, 255, 128, 128, 255, 0, 255, 0, 0]
    assert from_value_range(np.array([2.5, 3.0]), (2.0, 3.0)).tolist() == [128, 255]


def test_from_value_range_to_unit_floats() -> None:
    out = from_value_range(np.array([-1.0, 0.0, 3.0, np.nan], np.float32), VALUE_RANGE, dtype=np.float32)
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.5, 1.0, 0.0]


def test_uint8_round_trip_is_exact() -> None:
    u8 = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    for value_range in (VALUE_RANGE, (0.0, 1.0), (-3.0, 0.5)):
        np.testing.assert_array_equal(from_value_range(to_value_range(u8, value_range), value_range), u8)


def test_one_hot_rows() -> None:
    rows = one_hot([2, 0, 1], 3)
    assert rows.dtype == np.float32 and rows.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert one_hot(np.array([], np.int64), 4).shape == (0, 4)


@pytest.mark.parametrize("labels", [[3], [-1]])
def test_one_hot_refuses_indices_outside_the_classes(labels: list[int]) -> None:
    with pytest.raises(ValueError, match=r"0\.\.2"):
        one_hot(labels, 3)


def test_enlarge_repeats_pixels() -> None:
    image = np.array([[[1], [2]]], np.uint8)  # (1, 2, 1)
    assert enlarge(image, 2)[:, :, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert enlarge(image, 1) is image


def test_make_grid_lays_cells_out_nrow_to_a_row() -> None:
    cells = np.arange(1, 4, dtype=np.uint8).reshape(3, 1, 1, 1) * np.ones((1, 2, 2, 1), np.uint8)  # 3 of 2x2
    canvas = make_grid(cells, nrow=2, padding=1, fill=9)[:, :, 0]
    assert canvas.tolist() == [
        [9, 9, 9, 9, 9, 9, 9],
        [9, 1, 1, 9, 2, 2, 9],
        [9, 1, 1, 9, 2, 2, 9],
        [9, 9, 9, 9, 9, 9, 9],
        [9, 3, 3, 9, 9, 9, 9],
        [9, 3, 3, 9, 9, 9, 9],
        [9, 9, 9, 9, 9, 9, 9],
    ]


def test_make_grid_scales_cells_not_gaps_and_keeps_channels() -> None:
    cells = np.zeros((2, 1, 1, 3), np.uint8)
    cells[1] = (10, 20, 30)
    canvas = make_grid(cells, nrow=8, scale=3)  # fewer cells than nrow: one row of two
    assert canvas.shape == (*grid_shape(2, 1, 1, 8, 3), 3) == (2 + 3 + 2, 2 + 3 + 2 + 3 + 2, 3)
    assert (canvas[2:5, 7:10] == (10, 20, 30)).all() and canvas.sum() == 9 * 60  # the rest is fill 0


def test_grid_shape_counts_rows_and_the_default_padding() -> None:
    assert grid_shape(64, 32, 32, 8) == (8 * 34 + 2, 8 * 34 + 2)
    assert grid_shape(9, 4, 5, 4, scale=2) == (3 * 10 + 2, 4 * 12 + 2)
