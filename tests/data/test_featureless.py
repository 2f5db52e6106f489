"""Featureless images (tfuq.data.featureless) and the ``featureless:<count>`` spec: shapes,
determinism per (seed, image), what each kind looks like, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tfuq import data
from tfuq.data import featureless as fl
from tfuq.data.featureless import featureless

NOISE = 3.0  # the most sensor noise an image gets (grey levels), as the module states


def _plane_residual(channel: np.ndarray) -> np.ndarray:
    """What is left of ``channel`` after the least-squares plane a + b*x + c*y (numpy's lstsq)."""
    height, width = channel.shape
    y, x = np.mgrid[0:height, 0:width]
    design = np.stack([np.ones(height * width), x.ravel(), y.ravel()], axis=1)
    values = channel.ravel().astype(np.float64)
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def test_shape_dtype_and_kinds_in_turn():
    images = featureless(7, (12, 20), seed=5)
    assert images.shape == (7, 12, 20, 3) and images.dtype == np.uint8
    assert fl.KINDS == ("flat", "gradient", "smooth")


def test_image_i_depends_only_on_seed_i_and_size():
    many = featureless(9, (16, 16), seed=3)
    assert np.array_equal(featureless(4, (16, 16), seed=3), many[:4])
    assert np.array_equal(featureless(9, (16, 16), seed=3), many)
    other = featureless(9, (16, 16), seed=4)
    assert all(not np.array_equal(a, b) for a, b in zip(many, other, strict=True))


def test_flat_images_are_one_colour_plus_at_most_the_stated_noise():
    images = featureless(30, (32, 32), seed=1)[0::3]  # every third is flat
    # sample std of Gaussian noise of sigma <= 3 over 1,024 pixels, plus rounding (1/12): < 3.3
    assert images.reshape(len(images), -1, 3).std(axis=1).max() <= NOISE * 1.1
    colours = images.reshape(len(images), -1, 3).mean(axis=1)
    assert np.ptp(colours, axis=0).min() > 50  # the colours differ between images


def test_gradients_are_a_plane_in_every_channel_so_monotone_along_their_direction():
    # a linear blend along a direction is an affine function of (x, y): a plane plus noise
    images = featureless(30, (24, 32), seed=2)[1::3]
    for image in images:
        for channel in range(3):
            assert _plane_residual(image[..., channel]).std() <= NOISE * 1.1
    # before the noise the plane is exact
    for seed in range(5):
        clean = fl._gradient(np.random.default_rng(seed), 24, 32)
        for channel in range(3):
            assert np.abs(_plane_residual(clean[..., channel])).max() < 1e-8


def test_smooth_blends_change_little_from_pixel_to_pixel_and_cover_the_grid_corners():
    for seed in range(5):
        clean = fl._smooth(np.random.default_rng(seed), 40, 40)
        # at most 3 grid cells along a side, each changing by at most 255 over its length
        step = 255 * 3 / 39
        assert np.abs(np.diff(clean, axis=0)).max() <= step + 1e-9
        assert np.abs(np.diff(clean, axis=1)).max() <= step + 1e-9
        assert clean.min() >= 0 and clean.max() <= 255
    # noisy ones are far from any object photo's edges: neighbours within step + 2 * noise tails
    smooth = featureless(30, (40, 40), seed=6)[2::3].astype(np.int64)
    assert np.abs(np.diff(smooth, axis=1)).max() <= 255 * 3 / 39 + 8 * NOISE


@pytest.mark.parametrize("count", [0, -1, True, 1.5, "3", fl.MAX_COUNT + 1])
def test_a_bad_count_is_a_one_line_data_error(count):
    with pytest.raises(data.DataError, match="count must be an integer") as raised:
        featureless(count, (8, 8))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("size", [(0, 5), (3,), (2.0, 2), (True, 3), (4, -4)])
def test_a_bad_size_is_a_one_line_data_error(size):
    with pytest.raises(data.DataError, match="size must be") as raised:
        featureless(3, size)
    assert "\n" not in str(raised.value)


def test_the_featureless_spec_parses_and_loads_at_the_size_asked_for():
    assert data.parse_spec("featureless:500") == data.Spec("featureless", "500")
    assert data.parse_spec("cifar100_corrupted/fog_3:featureless:4") == data.Spec("featureless", "4", "fog", 3)
    loaded = data.load_spec("featureless:6", size=(10, 14), seed=2)
    assert loaded.labels is None and loaded.label_names is None
    assert np.array_equal(loaded.images, featureless(6, (10, 14), seed=2))
    kept = data.load_spec("featureless:6", size=(10, 14), seed=2, limit=3).images
    assert len(kept) == 3 and all(any(np.array_equal(k, i) for i in loaded.images) for k in kept)


@pytest.mark.parametrize("spec", ["featureless:0", "featureless:", "featureless:x", "featureless:-2",
                                  "featureless:1.5", f"featureless:{fl.MAX_COUNT + 1}"])
def test_a_bad_featureless_count_in_a_spec_is_one_line(spec):
    with pytest.raises(data.DataError) as raised:
        data.parse_spec(spec)
    message = str(raised.value)
    assert spec in message and "whole number in 1..1,000,000" in message and "\n" not in message


def test_featureless_images_need_a_size():
    with pytest.raises(data.DataError, match="generated at a size"):
        data.load_spec("featureless:3")
