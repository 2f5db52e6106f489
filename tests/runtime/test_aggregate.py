"""tfuq.runtime.aggregate: exact hand-computed cases, an independent route (scipy, loops), bad input."""

import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

import tfuq.runtime.aggregate
from tfuq.runtime.aggregate import SCORES, Aggregate, aggregate, check_probabilities, entropy

LN2 = math.log(2)


def test_two_passes_that_disagree_completely_have_mutual_information_ln2():
    result = aggregate(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))  # (passes, batch, classes)
    assert result.mean.tolist() == [[0.5, 0.5]]
    assert result.std.tolist() == [[0.5, 0.5]]
    assert result.predicted.tolist() == [0]  # a tie goes to the lowest class
    assert result.max_probability.tolist() == [0.5]
    assert result.predictive_entropy[0] == pytest.approx(LN2, abs=1e-15)
    assert result.expected_entropy.tolist() == [0.0]
    assert result.mutual_information[0] == pytest.approx(LN2, abs=1e-15)
    assert result.variation_ratio.tolist() == [0.5]
    assert result.lower.tolist() == [[0.0, 0.0]] and result.upper.tolist() == [[1.0, 1.0]]


def test_identical_passes_have_zero_spread_and_mutual_information():
    passes = np.array([[[0.5, 0.25, 0.25]]] * 5)
    result = aggregate(passes)
    assert result.std.tolist() == [[0.0, 0.0, 0.0]]
    # -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2
    assert result.predictive_entropy[0] == pytest.approx(1.5 * LN2, abs=1e-15)
    assert result.expected_entropy[0] == pytest.approx(1.5 * LN2, abs=1e-15)
    assert result.mutual_information[0] == pytest.approx(0.0, abs=1e-15)
    assert result.variation_ratio.tolist() == [0.0]
    assert result.lower.tolist() == result.upper.tolist() == [[0.5, 0.25, 0.25]]


def test_a_single_pass_has_no_spread():
    result = aggregate(np.array([[[0.2, 0.8], [0.6, 0.4]]]))  # T=1, two images
    assert result.std.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert result.predicted.tolist() == [1, 0]
    assert result.mutual_information.tolist() == [0.0, 0.0]
    assert result.variation_ratio.tolist() == [0.0, 0.0]
    assert result.passes == 1


def test_one_class_is_certain():
    result = aggregate(np.ones((3, 2, 1)))
    assert result.predicted.tolist() == [0, 0]
    assert result.max_probability.tolist() == [1.0, 1.0]
    for score in ("predictive_entropy", "expected_entropy", "mutual_information"):
        assert np.abs(getattr(result, score)).max() == 0.0
    assert result.variation_ratio.tolist() == [0.0, 0.0]


def test_ties_in_the_mean_and_in_each_pass_go_to_the_lowest_class():
    # Passes vote 0 (tie 0/1 inside the pass), 1 (tie 1/2), 1: mode 1 with 2 of 3 votes.
    passes = np.array([[[0.5, 0.5, 0.0]], [[0.0, 0.5, 0.5]], [[0.25, 0.5, 0.25]]])
    result = aggregate(passes)
    assert result.mean[0].tolist() == [0.25, 0.5, 0.25]
    assert result.predicted.tolist() == [1]
    assert result.variation_ratio[0] == pytest.approx(1 / 3, abs=1e-15)
    tie = aggregate(np.array([[[0.25, 0.375, 0.375]], [[0.25, 0.375, 0.375]]]))
    assert tie.predicted.tolist() == [1]


def test_variation_ratio_counts_the_passes_away_from_the_mode():
    votes = [0, 0, 1, 2, 0, 3]  # mode 0 with 3 of 6
    passes = np.eye(4)[votes][:, None, :] * 0.7 + 0.075
    assert aggregate(passes).variation_ratio.tolist() == [0.5]


def test_entropy_of_uniform_is_ln_classes_and_zero_times_log_zero_is_zero():
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8), abs=1e-14)
    assert entropy(np.array([0.0, 1.0, 0.0])) == 0.0
    result = aggregate(np.array([[[0.0, 1.0, 0.0]], [[0.0, 0.5, 0.5]]]))
    assert result.expected_entropy[0] == pytest.approx(LN2 / 2, abs=1e-15)
    # mean (0, 0.75, 0.25): -(3/4 ln 3/4 + 1/4 ln 1/4)
    assert result.predictive_entropy[0] == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), abs=1e-15
    )


def test_a_probability_below_the_smallest_normal_number_is_logged_as_that_number():
    # ln(max(p, tiny)): a subnormal p contributes p * ln(tiny), a zero 0; the logarithm is
    # taken only where p >= tiny, and these values must come out as they would with it.
    tiny64, tiny32 = 2.0**-1022, 2.0**-126
    assert entropy(np.array([1.0, 1e-310, 0.0])) == pytest.approx(-1e-310 * math.log(tiny64), rel=1e-12)
    p32 = np.array([1.0, 1e-40, 0.0], dtype=np.float32)
    got = entropy(p32)
    assert got.dtype == np.float32
    assert float(got) == pytest.approx(-float(np.float32(1e-40)) * math.log(tiny32), rel=1e-5)
    # per row along the last axis, and along another axis: the same values as one at a time
    rows = np.array([[0.5, 0.5, 0.0], [1e-310, 0.25, 0.75]])
    np.testing.assert_array_equal(entropy(rows), [entropy(rows[0]), entropy(rows[1])])
    np.testing.assert_array_equal(entropy(rows, axis=0), [entropy(rows[:, c]) for c in range(3)])


def test_interval_uses_the_population_std_times_conf_factor():
    passes = np.array([[[0.9, 0.1]], [[0.5, 0.5]]])  # mean (0.7, 0.3), std (0.2, 0.2)
    result = aggregate(passes, conf_factor=2.0)
    np.testing.assert_allclose(result.std, [[0.2, 0.2]], atol=1e-15)
    np.testing.assert_allclose(result.lower, [[0.3, -0.1]], atol=1e-15)
    np.testing.assert_allclose(result.upper, [[1.1, 0.7]], atol=1e-15)
    lower, upper = result.interval(0.5)
    np.testing.assert_allclose(lower, [[0.6, 0.2]], atol=1e-15)
    np.testing.assert_allclose(upper, [[0.8, 0.4]], atol=1e-15)
    assert result.conf_factor == 2.0


def _dirichlet_passes(rng, passes, batch, classes):
    centre = rng.dirichlet(np.ones(classes), size=batch)
    return np.stack([[rng.dirichlet(10 * c + 0.1) for c in centre] for _ in range(passes)])


def test_a_batch_matches_an_independent_per_image_computation(rng, monkeypatch):
    # Blocks of 16 images, so 600 images also cover block edges and a partial last block.
    monkeypatch.setattr(tfuq.runtime.aggregate, "_BLOCK_ELEMENTS", 7 * 5 * 16)
    probabilities = _dirichlet_passes(rng, 7, 600, 5)
    result = aggregate(probabilities, conf_factor=1.5)
    for b in [*range(0, 600, 37), 15, 16, 17, 591, 599]:
        image = probabilities[:, b]  # (passes, classes)
        mean = image.mean(axis=0)
        std = image.std(axis=0)  # numpy's population std, ddof=0
        predictive = scipy_entropy(mean)
        expected = np.mean([scipy_entropy(p) for p in image])
        modal = np.bincount(image.argmax(axis=1), minlength=5).max()
        np.testing.assert_allclose(result.mean[b], mean, atol=1e-15)
        np.testing.assert_allclose(result.std[b], std, atol=1e-15)
        assert result.predicted[b] == int(np.argmax(mean))
        assert result.max_probability[b] == pytest.approx(mean.max(), abs=1e-15)
        assert result.predictive_entropy[b] == pytest.approx(predictive, abs=1e-12)
        assert result.expected_entropy[b] == pytest.approx(expected, abs=1e-12)
        assert result.mutual_information[b] == pytest.approx(predictive - expected, abs=1e-12)
        assert result.variation_ratio[b] == pytest.approx(1 - modal / 7, abs=1e-15)
        np.testing.assert_allclose(result.lower[b], mean - 1.5 * std, atol=1e-15)
        np.testing.assert_allclose(result.upper[b], mean + 1.5 * std, atol=1e-15)


def test_mutual_information_is_never_meaningfully_negative(rng):
    result = aggregate(_dirichlet_passes(rng, 10, 200, 6))
    assert result.mutual_information.min() > -1e-12


def test_one_image_without_batch_axis_gives_unbatched_results():
    image = np.array([[0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])  # (passes, classes)
    single = aggregate(image)
    assert single.mean.shape == (2,) and single.predicted.shape == ()
    assert int(single.predicted) == 1
    np.testing.assert_allclose(single.mean, [1.1 / 3, 1.9 / 3], atol=1e-15)
    assert float(single.variation_ratio) == pytest.approx(1 / 3, abs=1e-15)
    for score in SCORES:
        assert np.ndim(single.score(score)) == 0


def test_float32_input_gives_float64_results_close_to_float64_input(rng):
    probabilities = _dirichlet_passes(rng, 5, 20, 4)
    from32 = aggregate(probabilities.astype(np.float32))
    from64 = aggregate(probabilities)
    assert from32.mean.dtype == np.float64 and from32.predicted.dtype == np.int64
    np.testing.assert_allclose(from32.mutual_information, from64.mutual_information, atol=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((2, 1, 3), np.nan), "NaN"),
        (np.array([[[np.inf, 0.0]], [[0.5, 0.5]]]), "Inf"),
        (np.array([[[-0.1, 1.1]], [[0.5, 0.5]]]), ">= 0"),
        (np.array([[[3.0, -2.0]]]), ">= 0"),
        (np.array([[[3.0, 2.0]]]), "logits"),
        (np.ones(4), "shape"),
        (np.ones((2, 2, 2, 2)), "shape"),
        (np.ones((0, 2, 3)), "no passes"),
        (np.ones((2, 0, 3)), "no batch"),
        (np.ones((2, 2, 0)), "no classes"),
        (np.array([["a", "b"]]), "numeric"),
        (np.ones((2, 3), dtype=bool), "numeric"),
    ],
)
def test_bad_probabilities_are_rejected_with_the_reason(bad, message):
    with pytest.raises(ValueError, match=message):
        aggregate(bad)


def test_integer_probabilities_are_accepted():
    assert check_probabilities(np.array([[1, 0], [0, 1]])).dtype == np.float64


@pytest.mark.parametrize("conf_factor", [-1.0, float("nan"), float("inf"), True, "1"])
def test_bad_conf_factor_is_rejected(conf_factor):
    with pytest.raises(ValueError, match="conf_factor"):
        aggregate(np.ones((2, 1, 1)), conf_factor=conf_factor)


def test_unknown_score_is_rejected():
    with pytest.raises(ValueError, match="unknown score"):
        aggregate(np.ones((2, 1, 1))).score("confidence")


def test_an_image_alone_gets_the_same_bits_as_in_a_batch():
    # np.mean(axis=0) once summed (passes, 1) pairwise and (passes, batch) in order, so
    # expected entropy moved in the last bit with the batch; batch inference needs equality.
    rng = np.random.default_rng(7)
    passes = rng.dirichlet(np.full(10, 0.3), size=(30, 40)).astype(np.float32)
    batched = aggregate(passes)
    for index in range(passes.shape[1]):
        for alone in (aggregate(passes[:, index]), aggregate(passes[:, index : index + 1])):
            for field in ("mean", "std", "expected_entropy", "mutual_information",
                          "predictive_entropy", "variation_ratio"):
                got = np.reshape(getattr(alone, field), np.shape(getattr(batched, field)[index]))
                assert np.array_equal(got, getattr(batched, field)[index]), field


def test_float32_rounding_above_one_is_accepted_and_more_is_not():
    # Found by a mutation pass: the 1e-6 tolerance had no test.
    from tfuq.runtime import aggregate as module

    ok = np.array([[[1 + 1e-7, 0.0]], [[0.5, 0.5]]])
    assert module.aggregate(ok).mean.shape == (1, 2)
    with pytest.raises(ValueError):
        module.aggregate(np.array([[[1.01, 0.0]], [[0.5, 0.5]]]))


# -- columns -----------------------------------------------------------------------------------
def test_columns_give_every_per_image_field_and_take_them_back():
    rng = np.random.default_rng(3)
    result = aggregate(rng.dirichlet(np.ones(4), size=(5, 6)), 1.5)
    columns = result.columns()
    assert list(columns) == ["mean", "std", "predicted", "max_probability", "predictive_entropy",
                             "expected_entropy", "mutual_information", "variation_ratio",
                             "lower", "upper"]
    back = Aggregate.from_columns(columns, passes=5, conf_factor=1.5)
    for name, value in columns.items():
        assert np.array_equal(getattr(back, name), value), name
    assert (back.passes, back.conf_factor) == (5, 1.5)


def test_from_columns_computes_the_interval_when_left_out():
    # Two images, two classes; the interval by hand: mean -/+ 2 * std.
    stored = {"mean": [[0.75, 0.25], [0.5, 0.5]], "std": [[0.25, 0.25], [0.0, 0.0]],
              "predicted": [0, 0], "max_probability": [0.75, 0.5],
              "predictive_entropy": [0.5, 0.6], "expected_entropy": [0.25, 0.6],
              "mutual_information": [0.25, 0.0], "variation_ratio": [0.5, 0.0]}
    result = Aggregate.from_columns(stored, passes=2, conf_factor=2.0)
    assert result.lower.tolist() == [[0.25, -0.25], [0.5, 0.5]]
    assert result.upper.tolist() == [[1.25, 0.75], [0.5, 0.5]]
    assert result.predicted.dtype == np.int64 and result.mean.dtype == np.float64
    assert set(result.columns(derived=False)) == set(stored)
    with pytest.raises(ValueError, match="aggregate columns missing: std, variation_ratio"):
        Aggregate.from_columns({k: v for k, v in stored.items() if k not in ("std", "variation_ratio")},
                               passes=2, conf_factor=1.0)


def test_take_gives_the_aggregate_of_the_chosen_images():
    rng = np.random.default_rng(4)
    passes = rng.dirichlet(np.full(3, 0.5), size=(7, 5))
    chosen = np.array([True, False, True, True, False])
    picked, direct = aggregate(passes).take(chosen), aggregate(passes[:, chosen])
    one, alone = aggregate(passes).take(1), aggregate(passes[:, 1])
    for name in picked.columns():
        assert np.array_equal(getattr(picked, name), getattr(direct, name)), name
        assert isinstance(getattr(one, name), np.ndarray), name  # 0-d arrays, not NumPy scalars
        assert np.shape(getattr(one, name)) == np.shape(getattr(alone, name)), name
        assert np.array_equal(getattr(one, name), getattr(alone, name)), name
