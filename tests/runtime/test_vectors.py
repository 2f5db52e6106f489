"""The language-neutral vectors in tests/vectors, which the Kotlin core reads too.

Masks are checked against a SplitMix64 written here with plain Python integers (not
tfuq.runtime.masks); aggregates and decisions against tfuq; photos against tfuq.runtime.photo
(Pillow's resize; make_vectors.py holds the plain reference they came from). The files must
also be exactly what make_vectors.py writes today, so they cannot drift from their generator.
"""

import base64
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tfuq.runtime import abstain, masks, photo
from tfuq.runtime.aggregate import SCORES, aggregate

VECTORS = Path(__file__).parents[1] / "vectors"
MASK64 = 2**64 - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


# -- an independent SplitMix64, as README.md defines the scheme ---------------------------------
def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream(key: int, index: int) -> int:
    return mix((key + (index + 1) * GOLDEN_GAMMA) & MASK64)


def mask_bits(seed: int, passes: int, layer: int, size: int, rate: float) -> str:
    threshold = round(rate * 2**24)
    bits = []
    for p in range(passes):
        key = stream(stream(seed, p), layer)
        bits.extend("1" if stream(key, i) >> 40 >= threshold else "0" for i in range(size))
    return "".join(bits)


def test_reference_splitmix64_gives_the_published_first_output():
    # Vigna's splitmix64.c seeded with 0 first returns 0xE220A8397B1DCDAF.
    assert stream(0, 0) == 0xE220A8397B1DCDAF


MASKS = load("masks.json")


def test_masks_file_names_the_scheme():
    assert (MASKS["scheme"], MASKS["version"]) == (masks.SCHEME, masks.SCHEME_VERSION)
    assert len(MASKS["mix"]) >= 5 and len(MASKS["cases"]) >= 5


@pytest.mark.parametrize("pair", MASKS["mix"], ids=lambda pair: pair["input"])
def test_mix_vectors(pair):
    assert str(mix(int(pair["input"]))) == pair["output"]


@pytest.mark.parametrize("case", MASKS["cases"], ids=lambda case: case["name"])
def test_mask_vectors_match_the_independent_reference(case):
    seed, passes = int(case["seed"]), case["passes"]
    assert 0 <= seed <= MASK64
    assert case["pass_seeds"] == [str(stream(seed, p)) for p in range(passes)]
    assert len(case["masks"]) == len(case["layers"])
    for layer, (spec, bits) in enumerate(zip(case["layers"], case["masks"], strict=True)):
        size = math.prod(spec["shape"])
        assert len(bits) == passes * size and set(bits) <= {"0", "1"}
        assert spec["threshold"] == round(spec["rate"] * 2**24)
        assert bits == mask_bits(seed, passes, layer, size, spec["rate"])


@pytest.mark.parametrize("case", MASKS["cases"], ids=lambda case: case["name"])
def test_mask_vectors_match_tfuq_masks(case):
    layers = [(spec["shape"], spec["rate"]) for spec in case["layers"]]
    generated = masks.masks_for(int(case["seed"]), case["passes"], layers)
    assert ["".join(map(str, m.reshape(-1).tolist())) for m in generated] == case["masks"]


# -- aggregates ------------------------------------------------------------------------------
AGGREGATE = load("aggregate.json")
FIELDS = ("mean", "std", "predicted", "max_probability", "predictive_entropy",
          "expected_entropy", "mutual_information", "variation_ratio", "lower", "upper")


@pytest.mark.parametrize("case", AGGREGATE["cases"], ids=lambda case: case["name"])
def test_aggregate_vectors(case):
    probabilities = np.asarray(case["probabilities"], dtype=np.float64)
    passes, batch, classes = probabilities.shape
    result = aggregate(probabilities, case["conf_factor"])
    expected = case["expected"]
    assert set(expected) == set(FIELDS)
    for field in FIELDS:
        want = np.asarray(expected[field])
        assert want.shape[0] == batch, field  # batch first, as README.md says
        if field == "predicted":
            assert result.predicted.tolist() == expected[field]
        else:
            np.testing.assert_allclose(getattr(result, field), want, rtol=0,
                                       atol=AGGREGATE["tolerance"], err_msg=field)


def test_aggregate_vectors_hold_the_exact_answer_cases():
    cases = {case["name"]: case["expected"] for case in AGGREGATE["cases"]}
    disagree = next(v for k, v in cases.items() if k.startswith("two passes that disagree"))
    assert disagree["mutual_information"] == [math.log(2)]
    identical = next(v for k, v in cases.items() if k.startswith("identical passes"))
    assert abs(identical["mutual_information"][0]) < 1e-15
    single = next(v for k, v in cases.items() if k.startswith("single pass"))
    assert single["variation_ratio"] == [0.0, 0.0] and single["std"] == [[0.0] * 3] * 2
    one_class = next(v for k, v in cases.items() if k == "one class")
    assert one_class["predicted"] == [0, 0]
    tie = next(v for k, v in cases.items() if k.startswith("tie in the mean"))
    assert tie["predicted"] == [1]


# -- decisions -------------------------------------------------------------------------------
DECISIONS = load("decisions.json")


def case_scores(case: dict) -> dict | None:
    """A case's model scores as ``(batch,)`` arrays; null in the file is NaN."""
    if "scores" not in case:
        return None
    return {name: np.array([math.nan if v is None else v for v in values], dtype=np.float64)
            for name, values in case["scores"].items()}


@pytest.mark.parametrize("case", DECISIONS["cases"], ids=lambda case: case["name"])
def test_decision_vectors(case):
    decision = abstain.decide(np.asarray(case["probabilities"], dtype=np.float64), case["rule"],
                              case_scores(case))
    assert decision.accept.tolist() == case["expected"]["accept"]
    assert decision.predicted.tolist() == case["expected"]["predicted"]
    if "failed_part" in case["expected"]:
        assert decision.failed_part.tolist() == case["expected"]["failed_part"]


def test_decision_vectors_cover_every_rule_and_score():
    rules = [case["rule"] for case in DECISIONS["cases"]]
    assert any(rule["rule"] == "interval" for rule in rules)
    assert {rule.get("score") for rule in rules} >= {
        "max_probability", "predictive_entropy", "mutual_information", "variation_ratio"}
    assert any("calibration" in rule for rule in rules)
    failed = [f for case in DECISIONS["cases"] if case["rule"]["rule"] == "all"
              for f in case["expected"]["failed_part"]]
    assert {-1, 0, 1, 2} <= set(failed)  # accepted, and each position of a part refusing
    outcomes = [a for case in DECISIONS["cases"] for a in case["expected"]["accept"]]
    assert True in outcomes and False in outcomes


def _parts(rule: dict) -> list[dict]:
    return rule["rules"] if rule["rule"] == "all" else [rule]


def test_decision_vectors_cover_the_ood_guard():
    def ood_positions(rule):  # the guards on a model score
        return [i for i, part in enumerate(_parts(rule))
                if part["rule"] == "ood" and part["score"] not in SCORES]

    scored = [case for case in DECISIONS["cases"] if ood_positions(case["rule"])]
    assert all("scores" in case for case in scored)
    assert any(case["rule"]["rule"] == "ood" for case in scored)
    # The guard refusing as the first, a middle and the last part of an all rule.
    refused_at = {(f, len(case["rule"]["rules"])) for case in scored if case["rule"]["rule"] == "all"
                  for f in case["expected"]["failed_part"] if f in ood_positions(case["rule"])}
    assert {0, 1, 2} <= {f for f, _ in refused_at} and any(f == n - 1 for f, n in refused_at)
    values = [v for case in scored for series in case["scores"].values() for v in series]
    assert None in values  # NaN refuses
    ties = [case for case in scored for i in ood_positions(case["rule"])
            if _parts(case["rule"])[i]["threshold"] in case["scores"][_parts(case["rule"])[i]["score"]]]
    assert ties  # a score equal to its threshold accepts
    assert any(len(case["scores"]) > 1 for case in scored)


def test_decision_vectors_cover_the_ood_guard_on_each_score_of_the_passes():
    guarded = [(case, index, part) for case in DECISIONS["cases"]
               for index, part in enumerate(_parts(case["rule"]))
               if part["rule"] == "ood" and part["score"] in SCORES]
    alone = {part["score"] for case, _, part in guarded if case["rule"]["rule"] == "ood"}
    assert alone == set(SCORES)
    # Inside all rules, refusing as the first, a middle and the last part.
    refused_at = {(f, len(case["rule"]["rules"])) for case, index, _ in guarded
                  if case["rule"]["rule"] == "all" for f in case["expected"]["failed_part"] if f == index}
    assert {0, 1} <= {f for f, _ in refused_at} and any(f == n - 1 > 1 for f, n in refused_at)
    # A score of the passes equal to its threshold accepts, on both sides (>= and <=), for every score.
    tied = set()
    for case, _, part in guarded:
        summary = aggregate(np.asarray(case["probabilities"], dtype=np.float64))
        values = summary.score(part["score"])
        for b in np.flatnonzero(values == part["threshold"]):
            if case["rule"]["rule"] == "ood":
                assert case["expected"]["accept"][b]
            else:
                assert case["expected"]["failed_part"][b] != case["rule"]["rules"].index(part)
            tied.add(part["score"])
    assert tied == set(SCORES)
    # Such a guard reads no model score, even one of the same name.
    assert any("scores" not in case for case, _, _ in guarded)
    assert any(part["score"] in case.get("scores", {}) for case, _, part in guarded)


# -- the files are what the generator writes ----------------------------------------------------
def test_vector_files_are_up_to_date_with_make_vectors():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.build().items():
        assert (VECTORS / name).read_text() == text, (
            f"{name} is stale: run python tests/vectors/make_vectors.py")


# -- photos ----------------------------------------------------------------------------------
PHOTOS = load("photos.json")


def _decode(text: str, shape: tuple[int, ...]) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    assert -1 in shape or data.size == math.prod(shape)
    return data.reshape(shape)


def test_photos_file_names_the_rule_and_covers_the_cases():
    assert PHOTOS["rule"] == photo.CENTER_CROP.to_json() == {"name": "center-crop-bilinear", "version": 1}
    cases = PHOTOS["cases"]
    wider = [c for c in cases if c["source_width"] * c["target_height"]
             > c["source_height"] * c["target_width"]]
    taller = [c for c in cases if c["source_width"] * c["target_height"]
              < c["source_height"] * c["target_width"]]
    upscale = [c for c in cases if c["target_height"] > c["source_height"]]
    alpha = [c for c in cases
             if set(_decode(c["source_rgba_base64"], (-1,))[3::4].tolist()) - {255}]
    assert wider and taller and upscale and alpha and len(cases) >= 10


@pytest.mark.parametrize("case", PHOTOS["cases"], ids=lambda case: case["name"])
def test_photo_vectors(case):
    pytest.importorskip("PIL")
    rgba = _decode(case["source_rgba_base64"], (case["source_height"], case["source_width"], 4))
    want = _decode(case["expected_rgb_base64"], (case["target_height"], case["target_width"], 3))
    got = photo.prepare(rgba, (case["target_height"], case["target_width"]), photo.CENTER_CROP)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


# -- photos by version 2 (step 1b: the reduction by s) ------------------------------------------
PHOTOS_V2 = load("photos_v2.json")


def _ceil(value: int, s: int) -> int:
    return -(-value // s)


def _case_geometry(case: dict) -> tuple[int, int, int, int, int]:
    """(s, top, left, crop height, crop width) of a case, from the case's own factor."""
    height, width = case["source_height"], case["source_width"]
    target_height, target_width = case["target_height"], case["target_width"]
    s = next((f for f in (8, 4, 2) if _fits(height, width, target_height, target_width, f)), 1)
    return (s, *photo.crop_box(_ceil(height, s), _ceil(width, s), target_height, target_width))


def _fits(height: int, width: int, target_height: int, target_width: int, s: int) -> bool:
    _, _, crop_height, crop_width = photo.crop_box(_ceil(height, s), _ceil(width, s),
                                                   target_height, target_width)
    return crop_height >= target_height and crop_width >= target_width


def test_photos_v2_file_names_the_rule_and_covers_the_cases():
    assert PHOTOS_V2["rule"] == photo.CENTER_CROP_V2.to_json() == photo.RULE.to_json() == {
        "name": "center-crop-bilinear", "version": 2}
    assert PHOTOS_V2["rule"] != PHOTOS["rule"]
    cases = PHOTOS_V2["cases"]
    geometry = [_case_geometry(c) for c in cases]
    assert {g[0] for g in geometry} == {1, 2, 4, 8}
    # edge blocks inside the crop: the last reduced column (row) kept, the width (height) not a
    # multiple of s; and a block whose pixel count n is not a power of two
    right = [c for c, (s, top, left, ch, cw) in zip(cases, geometry, strict=True)
             if s > 1 and c["source_width"] % s and left + cw == _ceil(c["source_width"], s)]
    bottom = [c for c, (s, top, left, ch, cw) in zip(cases, geometry, strict=True)
              if s > 1 and c["source_height"] % s and top + ch == _ceil(c["source_height"], s)]
    odd_n = [c for c, (s, *_) in zip(cases, geometry, strict=True)
             if s > 1 and any(n & (n - 1) for n in ((c["source_width"] % s or s) * s,
                                                    (c["source_height"] % s or s) * s))]
    assert right and bottom and set(map(id, right)) & set(map(id, bottom)) and odd_n
    wider = [c for c in cases if c["source_width"] * c["target_height"]
             > c["source_height"] * c["target_width"]]
    taller = [c for c in cases if c["source_width"] * c["target_height"]
              < c["source_height"] * c["target_width"]]
    alpha = [c for c, (s, *_) in zip(cases, geometry, strict=True)
             if s > 1 and set(_decode(c["source_rgba_base64"], (-1,))[3::4].tolist()) - {255}]
    assert wider and taller and alpha


def test_photos_v2_factors_are_the_largest_that_fit():
    factors = PHOTOS_V2["factors"]
    for case in factors:
        args = (case["height"], case["width"], case["target_height"], case["target_width"])
        assert photo.reduction_factor(*args) == case["s"], case
        assert case["s"] == 1 or _fits(*args, case["s"])
        assert all(not _fits(*args, f) for f in (8, 4, 2) if f > case["s"])
    by_size = {(c["width"], c["height"], c["target_width"]): c["s"] for c in factors}
    # RULE2.md's examples, and the boundary where the reduced crop is exactly 224 wide
    assert [by_size[(w, h, 224)] for w, h in ((640, 480), (451, 300), (2000, 1500), (4000, 3000),
                                              (4000, 600), (448, 448), (446, 448))] == [2, 1, 4, 8, 2, 2, 1]


@pytest.mark.parametrize("case", PHOTOS_V2["cases"], ids=lambda case: case["name"])
def test_photo_v2_vectors(case):
    pytest.importorskip("PIL")
    rgba = _decode(case["source_rgba_base64"], (case["source_height"], case["source_width"], 4))
    want = _decode(case["expected_rgb_base64"], (case["target_height"], case["target_width"], 3))
    size = (case["target_height"], case["target_width"])
    got = photo.prepare(rgba, size, photo.CENTER_CROP_V2)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    assert np.array_equal(photo.prepare(rgba, size), want)  # version 2 is the default
