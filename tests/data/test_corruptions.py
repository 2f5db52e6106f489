"""tfuq.data.corruptions: published parameters, determinism, layout, and distortion per severity.

Distortion is measured as 1 - SSIM against the clean image (Wang et al. 2004: Gaussian window
sigma 1.5, K1 = 0.01, K2 = 0.03), implemented here independently of the module. It is
measured on real CIFAR-100 test images when ../shared/data is present and always on synthetic
images with natural-image statistics (1/f spectrum plus opaque shapes).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tfuq.data import DataError
from tfuq.data.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    config_name,
    corrupt,
    frost_texture,
    parse_config_name,
)

pytest.importorskip("scipy")
pytest.importorskip("PIL")

SHARED_TEST = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar100" / "test_50_per_class.npz"
)

# Corruptions whose result does not depend on the seed (no random draw in the definition).
DETERMINISTIC = {
    "defocus_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
}


def synthetic_images(count: int, seed: int = 0, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Natural-ish uint8 images: 1/f amplitude spectrum (shared luminance plus some colour)
    and a few opaque discs and rectangles with sharp edges."""
    rng = np.random.default_rng(seed)
    height, width = size
    freq = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    freq[0, 0] = 1.0

    def field(channels):
        spectrum = rng.normal(size=(height, width, channels)) + 1j * rng.normal(
            size=(height, width, channels)
        )
        values = np.real(np.fft.ifft2(spectrum / freq[..., None], axes=(0, 1)))
        return (values - values.mean()) / values.std()

    rows, cols = np.mgrid[0:height, 0:width]
    images = []
    for _ in range(count):
        image = rng.uniform(90, 160, size=3) + 35 * field(1) + 12 * field(3)
        for _ in range(3):
            colour = rng.uniform(0, 255, size=3)
            centre_r, centre_c = rng.uniform(0, height), rng.uniform(0, width)
            extent = rng.uniform(3, 10)
            if rng.random() < 0.5:
                mask = np.hypot(rows - centre_r, cols - centre_c) < extent
            else:
                mask = (np.abs(rows - centre_r) < extent) & (np.abs(cols - centre_c) < extent / 1.5)
            image[mask] = colour
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(images)


def cifar_images(count: int) -> np.ndarray:
    with np.load(SHARED_TEST) as data:
        return data["x"][:: len(data["x"]) // count][:count]


@pytest.fixture(scope="module", params=["cifar100", "synthetic"])
def clean(request) -> np.ndarray:
    if request.param == "cifar100":
        if not SHARED_TEST.is_file():
            pytest.skip("shared CIFAR-100 data not present")
        return cifar_images(12)
    return synthetic_images(12, seed=5)


def one_minus_ssim(clean: np.ndarray, corrupted: np.ndarray) -> float:
    """Mean 1 - SSIM over images and channels."""
    from scipy.ndimage import gaussian_filter

    a = clean.astype(np.float64)
    b = corrupted.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def local(z):
        return gaussian_filter(z, sigma=(0, 1.5, 1.5, 0), truncate=3.5)

    mean_a, mean_b = local(a), local(b)
    var_a = local(a * a) - mean_a**2
    var_b = local(b * b) - mean_b**2
    cov = local(a * b) - mean_a * mean_b
    ssim = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / (
        (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(1 - ssim.mean())


_distortion_cache: dict = {}


def distortions(clean: np.ndarray, corruption: str) -> list[float]:
    key = (id(clean), corruption)
    if key not in _distortion_cache:
        values = []
        for severity in SEVERITIES:
            corrupted = corrupt(clean, corruption, severity, seed=3)
            assert corrupted.shape == clean.shape and corrupted.dtype == np.uint8
            values.append(one_minus_ssim(clean, corrupted))
        _distortion_cache[key] = values
    return _distortion_cache[key]


# -- severity ordering ---------------------------------------------------------------------

MONOTONE = [c for c in CORRUPTIONS if c not in {"glass_blur", "motion_blur", "elastic_transform"}]


@pytest.mark.parametrize("corruption", MONOTONE)
def test_each_severity_distorts_more(clean, corruption):
    values = distortions(clean, corruption)
    assert values[0] > 0.002, f"{corruption} severity 1 barely changes images: {values}"
    # frost 3 -> 4 only darkens the image (weights (0.9, 0.4) -> (0.85, 0.4)); with the official
    # photographs 1 - SSIM of the synthetic images falls there by 0.002
    slack = 0.005 if corruption == "frost" else 0.0
    assert all(np.diff(values) > -slack), f"{corruption}: 1-SSIM by severity {np.round(values, 4)}"
    assert values[-1] > values[0]


def test_motion_blur_severities_3_and_4_are_the_same_kernel(clean):
    # Published (radius, sigma): (6, 2) and (8, 2). Taps 13-16 of the wider kernel weigh
    # exp(-13^2 / 8) / sum < 1e-9, invisible at 16 bits; with the same angle the images match.
    values = distortions(clean, "motion_blur")
    assert values[0] < values[1] < values[2] < values[4]
    assert values[2] == values[3]
    assert np.array_equal(corrupt(clean, "motion_blur", 3), corrupt(clean, "motion_blur", 4))


def test_glass_blur_two_shuffle_passes_distort_more_than_one(clean):
    # Published (sigma, delta, passes): severities 1-3 shuffle once, 4-5 twice. Within the
    # same number of passes a larger sigma smooths the shuffle away, so 1-3 are not ordered.
    values = distortions(clean, "glass_blur")
    assert min(values[3:]) > max(values[:3]) + 0.05, np.round(values, 4)


def test_elastic_transform_follows_its_published_affine_jitter(clean):
    # Published (alpha, sigma, jitter) in pixels: jitter 2.56 .. 0.96 shrinks with severity and
    # outweighs the elastic field (alpha <= 3.2 after smoothing), so distortion falls.
    values = distortions(clean, "elastic_transform")
    assert values[0] > values[2] > values[4] > 0.1, np.round(values, 4)


# -- determinism, layout -------------------------------------------------------------------


def test_same_seed_gives_identical_images_and_other_seeds_differ():
    images = synthetic_images(3, seed=1)
    for corruption in CORRUPTIONS:
        first = corrupt(images, corruption, 3, seed=7)
        assert np.array_equal(first, corrupt(images, corruption, 3, seed=7)), corruption
        other = corrupt(images, corruption, 3, seed=8)
        if corruption in DETERMINISTIC:
            assert np.array_equal(first, other), corruption
        else:
            assert not np.array_equal(first, other), corruption


def test_result_per_image_does_not_depend_on_batching():
    images = synthetic_images(4, seed=2)
    for corruption in CORRUPTIONS:
        whole = corrupt(images, corruption, 2, seed=1)
        assert np.array_equal(whole[2:], corrupt(images[2:], corruption, 2, seed=1, index=2))
        picked = corrupt(images[[3, 1]], corruption, 2, seed=1, index=np.array([3, 1]))
        assert np.array_equal(picked, whole[[3, 1]]), corruption


def test_shapes_dtypes_and_input_are_preserved_for_any_size():
    images = synthetic_images(2, seed=3, size=(24, 40))
    before = images.copy()
    for corruption in CORRUPTIONS:
        for severity in (1, 5):
            out = corrupt(images, corruption, severity)
            assert out.shape == images.shape and out.dtype == np.uint8, corruption
    assert np.array_equal(images, before)


def test_config_names_round_trip_for_all_75():
    names = {config_name(c, s) for c in CORRUPTIONS for s in SEVERITIES}
    assert len(names) == 75
    for name in names:
        assert config_name(*parse_config_name(name)) == name
    assert parse_config_name("elastic_transform_5") == ("elastic_transform", 5)
    assert parse_config_name("frosted_glass_blur_2") == ("glass_blur", 2)  # tfds' cifar10 name


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: corrupt(x, "rain", 1), "unknown corruption 'rain'"),
        (lambda x: corrupt(x, "fog", 0), "severity must be an integer from 1 to 5"),
        (lambda x: corrupt(x, "fog", 6), "severity must be an integer from 1 to 5"),
        (lambda x: corrupt(x, "fog", True), "severity must be"),
        (lambda x: corrupt(x, "fog", 2, seed=-1), "seed must be a non-negative integer"),
        (lambda x: corrupt(x, "fog", 2, index=np.array([1])), "index must be an integer or 2"),
        (lambda x: corrupt(x.astype(np.float32), "fog", 2), "must be uint8"),
        (lambda x: corrupt(x[..., 0], "fog", 2), r"\(N, H, W, 3\)"),
        (lambda x: parse_config_name("fog"), "is not <corruption>_<severity>"),
        (lambda x: parse_config_name("fog_9"), "severity must be"),
    ],
)
def test_bad_input_is_a_one_line_data_error(call, message):
    images = synthetic_images(2)
    with pytest.raises(DataError, match=message) as error:
        call(images)
    assert "\n" not in str(error.value)


# -- values computed by hand from the published definitions -------------------------------


def test_contrast_pulls_pixels_to_the_channel_mean():
    image = np.full((1, 32, 32, 3), 53, np.uint8)
    image[:, :, 16:] = 147  # channel means 100; 47 * factor is never near a whole number
    for severity, factor in zip(SEVERITIES, (0.75, 0.5, 0.4, 0.3, 0.15), strict=True):
        out = corrupt(image, "contrast", severity)
        assert out[0, 0, 0, 0] == math.floor(100 - 47 * factor)
        assert out[0, 0, 31, 0] == math.floor(100 + 47 * factor)


def test_brightness_raises_hsv_value_keeping_hue_and_saturation():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 0] = (200, 100, 0)
    out = corrupt(image, "brightness", 5)  # V + 0.3
    # V = 200/255 + 0.3 > 1 clips to 1: every channel scales by 255/200
    assert out[0, 0, 0].tolist() == [255, math.floor(100 * 255 / 200), 0]
    # black has S = 0: it becomes grey at V = 0.3
    assert out[0, 5, 5].tolist() == [math.floor(0.3 * 255)] * 3


@pytest.mark.parametrize(
    "severity, scale", list(zip(SEVERITIES, (0.04, 0.06, 0.08, 0.09, 0.10), strict=True))
)
def test_gaussian_noise_has_the_published_standard_deviation(severity, scale):
    grey = np.full((40, 32, 32, 3), 128, np.uint8)
    noise = corrupt(grey, "gaussian_noise", severity).astype(np.float64) - 128
    # truncation to uint8 adds a uniform error: mean -1/2, variance 1/12
    expected = math.sqrt((scale * 255) ** 2 + 1 / 12)
    assert noise.std() == pytest.approx(expected, rel=0.02)
    assert noise.mean() == pytest.approx(-0.5, abs=0.25)


@pytest.mark.parametrize(
    "severity, photons", list(zip(SEVERITIES, (500, 250, 100, 75, 50), strict=True))
)
def test_shot_noise_is_poisson_with_the_published_photon_count(severity, photons):
    level = 102 / 255
    grey = np.full((40, 32, 32, 3), 102, np.uint8)
    out = corrupt(grey, "shot_noise", severity).astype(np.float64) / 255
    # Poisson(level * photons) / photons has variance level / photons
    assert out.std() == pytest.approx(math.sqrt(level / photons), rel=0.04)


@pytest.mark.parametrize(
    "severity, amount", list(zip(SEVERITIES, (0.01, 0.02, 0.03, 0.05, 0.07), strict=True))
)
def test_impulse_noise_flips_the_published_share_to_salt_or_pepper(severity, amount):
    grey = np.full((40, 32, 32, 3), 128, np.uint8)
    out = corrupt(grey, "impulse_noise", severity)
    values = out.size
    tolerance = 4 * math.sqrt(amount / 2 * values) / values
    assert np.mean(out == 255) == pytest.approx(amount / 2, abs=tolerance)
    assert np.mean(out == 0) == pytest.approx(amount / 2, abs=tolerance)
    assert np.all((out == 0) | (out == 255) | (out == 128))


def test_defocus_blur_severity_1_is_a_3x3_gaussian_of_sigma_0_4():
    # disk radius 0.3 covers one pixel, so the kernel is cv2's 3-tap Gaussian, sigma 0.4
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 16, 16] = 255
    out = corrupt(image, "defocus_blur", 1)[0, :, :, 0]
    edge = math.exp(-1 / (2 * 0.4**2))
    taps = np.array([edge, 1.0, edge]) / (1 + 2 * edge)
    expected = np.floor(255 * np.outer(taps, taps) + 1e-9)
    assert np.array_equal(out[15:18, 15:18], expected)
    assert out.sum() == expected.sum()


@pytest.mark.parametrize("angle, step", [(0.0, (0, 1)), (90.0, (1, 0)), (-90.0, (-1, 0))])
def test_motion_blur_kernel_is_imagemagicks_one_sided_gaussian(angle, step):
    from tfuq.data.corruptions import _motion_blur

    # ImageMagick MotionBlurImage(radius 6, sigma 2): 13 taps exp(-i^2 / 8), normalised; tap i
    # reads the pixel i steps along the angle, so an impulse spreads the other way.
    impulse = np.zeros((40, 40))
    impulse[20, 20] = 1.0
    out = _motion_blur(impulse, 6, 2, angle)
    taps = np.exp(-(np.arange(13) ** 2) / 8)
    taps /= taps.sum()
    for i, weight in enumerate(taps):
        assert out[20 - i * step[0], 20 - i * step[1]] == pytest.approx(weight)
    assert out.sum() == pytest.approx(1.0)


def test_frost_blends_image_and_texture_with_the_published_weights():
    dark = np.full((4, 32, 32, 3), 20, np.uint8)
    outs = {s: corrupt(dark, "frost", s).astype(np.float64) for s in SEVERITIES}
    # severity 1 is x + 0.2 f (no clipping on a dark image); the texture is shared by the
    # severities of an image, so f recovered from it predicts the others
    texture = (outs[1] - 20) / 0.2
    weights = {1: (1, 0.2), 2: (1, 0.3), 3: (0.9, 0.4), 4: (0.85, 0.4), 5: (0.75, 0.45)}
    for severity, (image_weight, frost_weight) in weights.items():
        predicted = np.clip(image_weight * 20 + frost_weight * texture, 0, 255)
        # truncation of severity 1 (< 1) is amplified by frost_weight / 0.2, plus own truncation
        assert np.abs(outs[severity] - predicted).max() <= frost_weight / 0.2 + 1


def test_frost_texture_is_a_seeded_pale_blue_texture():
    first = frost_texture(32, 32, np.random.default_rng(4))
    again = frost_texture(32, 32, np.random.default_rng(4))
    other = frost_texture(32, 32, np.random.default_rng(5))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.shape == (32, 32, 3) and first.min() >= 0 and first.max() <= 255
    red, green, blue = first.mean(axis=(0, 1))
    assert red < green < blue
    textures = np.stack([frost_texture(32, 32, np.random.default_rng(s)) for s in range(20)])
    assert 0.25 < textures.mean() / 255 < 0.42 and 0.1 < textures.std() / 255 < 0.2


def _official_frost_or_skip():
    from tfuq.data import corruptions

    if corruptions.frost_photos() is None:
        pytest.skip("imagecorruptions (official frost textures) not installed")
    return corruptions


def test_frost_uses_a_crop_of_an_official_photograph_shrunk_as_cv2_does():
    import importlib.util

    from PIL import Image
    from scipy import ndimage

    _official_frost_or_skip()
    folder = Path(list(importlib.util.find_spec("imagecorruptions").submodule_search_locations)[0]) / "frost"
    # cv2.resize(fx=0.2) bilinear, computed independently: source coordinate (i + 0.5) / 0.2 - 0.5
    shrunk = []
    for name in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"):
        photo = np.asarray(Image.open(folder / name).convert("RGB"), dtype=np.float64)
        rows, cols = (np.arange(int(round(n * 0.2))) for n in photo.shape[:2])
        grid = np.meshgrid((rows + 0.5) / 0.2 - 0.5, (cols + 0.5) / 0.2 - 0.5, indexing="ij")
        shrunk.append(np.stack([ndimage.map_coordinates(photo[..., c], grid, order=1) for c in range(3)], -1))
    black = np.zeros((2, 32, 32, 3), np.uint8)
    out = corrupt(black, "frost", 1, seed=7)  # 1 * 0 + 0.2 * frost, truncated
    for image in out:
        found = False
        for photo in shrunk:
            expected = np.lib.stride_tricks.sliding_window_view(photo, (32, 32, 3))[..., 0, :, :, :]
            windows = np.floor(0.2 * expected + 1e-9).astype(np.uint8)
            if np.any(np.all(windows == image, axis=(-3, -2, -1))):
                found = True
                break
        assert found, "frost is not a 32x32 crop of one of the first five photographs"


def test_frost_falls_back_to_the_procedural_texture_with_a_warning(monkeypatch):
    from tfuq.data import corruptions

    monkeypatch.setattr(corruptions, "_frost_folder", lambda: None)
    monkeypatch.setattr(corruptions, "_frost_photos", None)
    monkeypatch.setattr(corruptions, "_frost_warned", False)
    assert corruptions.frost_source() == "procedural"
    dark = np.full((1, 32, 32, 3), 20, np.uint8)
    with pytest.warns(UserWarning, match="procedural stand-in"):
        out = corrupt(dark, "frost", 1, seed=3)
    texture = frost_texture(32, 32, np.random.default_rng([3, CORRUPTIONS.index("frost"), 0]))
    assert np.array_equal(out[0], np.uint8(np.clip(20 + 0.2 * texture, 0, 255)))
