"""The seeded mask generator, checked against a pure-Python-integer SplitMix64."""

import numpy as np
import pytest

from tfuq.runtime import masks

M64 = 2**64 - 1


def reference_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def reference_stream(key: int, i: int) -> int:
    return reference_mix((key + (i + 1) * 0x9E3779B97F4A7C15) & M64)


def reference_mask(seed: int, passes: int, layer: int, size: int, rate: float) -> list[list[int]]:
    threshold = round(rate * 2**24)
    rows = []
    for p in range(passes):
        key = reference_stream(reference_stream(seed, p), layer)
        rows.append([int((reference_stream(key, i) >> 40) >= threshold) for i in range(size)])
    return rows


def test_splitmix64_matches_the_published_first_outputs():
    # SplitMix64 seeded with 0: first outputs as in Vigna's reference splitmix64.c.
    assert reference_stream(0, 0) == 0xE220A8397B1DCDAF
    assert int(masks.stream(0, 3)[0]) == 0xE220A8397B1DCDAF
    assert [int(v) for v in masks.stream(0, 3)] == [reference_stream(0, i) for i in range(3)]


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7, 2**64 - 1])
def test_masks_are_bit_identical_to_the_reference(seed):
    generated = masks.masks_for(seed, 4, [((3, 5), 0.5), ((7,), 0.1)])
    assert generated[0].shape == (4, 3, 5) and generated[0].dtype == np.uint8
    assert generated[0].reshape(4, -1).tolist() == reference_mask(seed, 4, 0, 15, 0.5)
    assert generated[1].tolist() == reference_mask(seed, 4, 1, 7, 0.1)


def test_pass_seeds_are_the_run_seed_stream():
    assert [int(s) for s in masks.pass_seeds(99, 3)] == [reference_stream(99, p) for p in range(3)]


def test_keep_rate_matches_dropout_rate():
    mask = masks.masks_for(7, 50, [((2000,), 0.3)])[0]
    # 100,000 Bernoulli(0.7) draws: standard error 0.0014, so 0.01 is over 7 sigma.
    assert abs(mask.mean() - 0.7) < 0.01


def test_same_seed_same_masks_other_seed_other_masks():
    a = masks.masks_for(5, 3, [((64,), 0.5)])[0]
    b = masks.masks_for(5, 3, [((64,), 0.5)])[0]
    c = masks.masks_for(6, 3, [((64,), 0.5)])[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # passes differ from each other


def test_a_prefix_of_passes_does_not_depend_on_their_number():
    short = masks.masks_for(3, 2, [((16,), 0.5)])[0]
    long = masks.masks_for(3, 5, [((16,), 0.5)])[0]
    assert np.array_equal(short, long[:2])


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "3", True])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        masks.pass_seeds(seed, 2)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_bad_rates_are_rejected(rate):
    with pytest.raises(ValueError, match="rate"):
        masks.masks_for(0, 2, [((4,), rate)])


def test_zero_passes_rejected():
    with pytest.raises(ValueError, match="passes"):
        masks.pass_seeds(0, 0)


def test_image_seed_follows_its_definition_by_hand():
    import hashlib

    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = (2).to_bytes(4, "little") + (3).to_bytes(4, "little") + (3).to_bytes(4, "little")
    key = int.from_bytes(hashlib.blake2b(data + bytes(range(18)), digest_size=8).digest(), "little")
    assert masks.image_key(image) == key
    mask64 = 2**64 - 1

    def splitmix_first(state):  # SplitMix64's first output, in Python integers
        z = (state + 0x9E3779B97F4A7C15) & mask64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        return z ^ (z >> 31)

    for seed in (0, 7, 2**64 - 1):
        assert masks.image_seed(seed, image) == splitmix_first(seed ^ key)
    assert masks.image_seed(0, image) != masks.image_seed(0, image[::-1].copy())


def test_one_sweep_over_all_layers_equals_the_reference_per_layer():
    # masks_for draws every layer and pass in one array; layers of other sizes and rates
    # (a 24-bit threshold of 1, the smallest) must each equal the element-by-element reference.
    layers = [((2, 3), 0.5), ((1,), 2**-24), ((9,), 0.999), ((4, 1, 2), 0.2)]
    for seed in (0, 2**64 - 1, 31337):
        generated = masks.masks_for(seed, 3, layers)
        for index, (shape, rate) in enumerate(layers):
            size = int(np.prod(shape))
            assert generated[index].shape == (3, *shape)
            assert generated[index].reshape(3, -1).tolist() == reference_mask(seed, 3, index, size, rate)
    assert masks.masks_for(0, 2, []) == []
