"""tfuq.evaluation without a real model: a hand-computed report, chunked runs, plots."""

import json

import numpy as np
import pytest

from tests._dummies.modelfiles import valid_config
from tfuq import evaluation, reporting
from tfuq.runtime.config import ModelConfig

# 2 passes, 4 images, 2 classes. Interval rule, Z = 1:
#   0: certain class 0, right             -> accept
#   1: passes disagree, mean (.5, .5)     -> abstain; predicts 0, label 1: wrong
#   2: certain class 1, label 0: wrong    -> accept
#   3: (.75, .25) twice, right            -> accept
PROBABILITIES = np.array([
    [[1.0, 0.0], [0.75, 0.25], [0.0, 1.0], [0.75, 0.25]],
    [[1.0, 0.0], [0.25, 0.75], [0.0, 1.0], [0.75, 0.25]],
])
LABELS = np.array([0, 1, 0, 0])
OOD = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [0.0, 1.0]]])  # both max prob .5
RULE = {"rule": "interval", "conf_factor": 1.0}


def test_a_small_report_computed_by_hand():
    report = evaluation.summarize(PROBABILITIES, LABELS, RULE, OOD).report
    assert (report["images"], report["passes"], report["classes"]) == (4, 2, 2)
    assert report["micro_f1_all"] == 0.5 and report["accuracy_all"] == 0.5
    assert report["micro_f1_accepted"] == pytest.approx(2 / 3)
    assert report["accepted"] == 3 and report["coverage"] == 0.75 and report["ignored"] == 0.25
    assert report["ignored_would_be_wrong"] == 1.0
    assert report["selective_risk"] == pytest.approx(1 / 3)
    # Brier: 0, .25 + .25, 1 + 1, .0625 + .0625 over 4 images.
    assert report["brier"] == pytest.approx(2.625 / 4)
    # ECE: bin (14/15, 1]: images 0, 2: |1/2 - 1| * 2/4; (7/15, 8/15]: image 1: |0 - .5| / 4;
    # (11/15, 12/15]: image 3: |1 - .75| / 4.
    assert report["ece"] == pytest.approx(0.25 + 0.125 + 0.0625)
    # Max probability 1, .5, 1, .75; tied 1s enter together: (.5 * 1/2 + .25 * 1/3 + .25 * 2/4).
    assert report["score"] == "max_probability"
    assert report["aurc"] == pytest.approx(0.25 + 0.25 / 3 + 0.125)
    # Wrong images 1 and 2 vs right 0 and 3 by uncertainty -max_probability:
    # 1 beats both, 2 ties with 0 and loses to 3 -> (1 + 1 + .5 + 0) / 4.
    assert report["auroc_errors"] == 0.625
    assert report["fpr95_errors"] == 1.0
    # Both OOD images have max probability .5: above three test images, tied with one.
    assert report["auroc_ood"] == pytest.approx(3.5 / 4)
    assert report["fpr95_ood"] == 0.25
    assert report["ood_images"] == 2 and report["ood_accepted"] == 0.0
    assert set(report["scores"]) == {
        "max_probability", "predictive_entropy", "mutual_information", "variation_ratio"}
    json.dumps(report)  # plain JSON, no NaN or NumPy types needed


def test_undefined_numbers_are_none_not_nan():
    certain_and_right = np.array([[[1.0, 0.0], [0.0, 1.0]]] * 2)
    report = evaluation.summarize(certain_and_right, np.array([0, 1]), RULE).report
    assert report["ignored_would_be_wrong"] is None  # nothing ignored
    assert report["auroc_errors"] is None and report["fpr95_errors"] is None  # no error
    nothing = evaluation.summarize(
        certain_and_right, np.array([0, 1]),
        {"rule": "threshold", "score": "max_probability", "threshold": 1.5},
    ).report
    assert nothing["micro_f1_accepted"] is None and nothing["selective_risk"] is None
    assert "NaN" not in json.dumps(nothing)


def test_threshold_rule_sets_the_headline_score():
    rule = {"rule": "threshold", "score": "mutual_information", "threshold": 0.1}
    report = evaluation.summarize(PROBABILITIES, LABELS, rule).report
    assert report["score"] == "mutual_information"
    assert report["aurc"] == report["scores"]["mutual_information"]["aurc"]
    assert report["rule_text"] == "mutual_information <= 0.1"
    assert report["accepted"] == 3  # image 1 has mutual information ln 2 - .562 > .1


@pytest.mark.parametrize(
    "labels, message",
    [(np.array([0, 1, 0]), "vector of 4"), (np.array([0, 1, 2, 0]), "out of range")],
)
def test_bad_labels_are_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        evaluation.summarize(PROBABILITIES, labels, RULE)


def test_bad_rule_or_shape_is_rejected():
    with pytest.raises(ValueError, match="decision rule"):
        evaluation.summarize(PROBABILITIES, LABELS, {"rule": "vote"})
    with pytest.raises(ValueError, match="passes, batch, classes"):
        evaluation.summarize(PROBABILITIES[:, 0], LABELS[:1], RULE)


class FakeModel:
    """Stands in for tfuq.runtime.Model: class scores follow the first pixel."""

    passes, classes, input_shape = 3, 2, (4, 4, 3)

    def __init__(self):
        self.calls = []

    def run(self, images, seed=0):
        self.calls.append((len(images), seed))
        level = images[:, 0, 0, 0].astype(np.float32) / 255
        per_image = np.stack([level, 1 - level], axis=-1)
        return np.repeat(per_image[None], self.passes, axis=0)


def test_run_passes_runs_in_chunks_and_keeps_the_order():
    images = np.zeros((70, 4, 4, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(70)
    model = FakeModel()
    out = evaluation.run_passes(model, images, seed=9)
    assert out.shape == (3, 70, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, :, 0], np.arange(70) / 255, rtol=1e-6)
    assert sum(n for n, _ in model.calls) == 70 and {s for _, s in model.calls} == {9}
    assert len(model.calls) > 1


def test_evaluate_uses_the_rule_the_model_carries():
    model = FakeModel()
    model.config = ModelConfig.from_dict(valid_config(decision={"rule": "threshold", "score": "max_probability", "threshold": 0.9}))
    images = np.zeros((4, 4, 4, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = [255, 250, 128, 0]
    result = evaluation.evaluate(model, images, np.array([0, 0, 0, 1]), seed=3)
    assert result.rule["rule"] == "threshold"
    assert result.decision.accept.tolist() == [True, True, False, True]
    assert result.report["seed"] == 3


def test_saved_arrays_recompute_the_report(tmp_path):
    result = evaluation.summarize(PROBABILITIES, LABELS, RULE, OOD)
    result.save_arrays(tmp_path / "passes.npz")
    with np.load(tmp_path / "passes.npz") as saved:
        np.testing.assert_array_equal(saved["probabilities"], PROBABILITIES)
        np.testing.assert_allclose(saved["mean"], PROBABILITIES.mean(axis=0))
        assert saved["accept"].tolist() == [True, False, True, True]
        assert saved["ood_accept"].tolist() == [False, False]
        assert json.loads(str(saved["rule"])) == RULE
        right = saved["predicted"] == saved["labels"]
        assert right.mean() == result.report["micro_f1_all"]


def test_report_writes_plots_and_markdown(tmp_path):
    result = evaluation.summarize(PROBABILITIES, LABELS, RULE, OOD)
    path = reporting.write_report(result, tmp_path / "report")
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert names == {"report.md", "risk_coverage.png", "reliability.png", "scores_errors.png",
                     "scores_ood.png"}  # no images given: no gallery
    text = path.read_text()
    for png in names - {"report.md"}:
        assert f"]({png})" in text
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "micro-F1, accepted images" in text and "0.6667" in text


def test_the_table_shows_the_papers_columns():
    table = reporting.format_table(evaluation.summarize(PROBABILITIES, LABELS, RULE).report)
    for row in ("micro-F1, all images (original model)", "micro-F1, accepted images",
                "share ignored", "share of ignored that would be wrong", "coverage",
                "selective risk", "AURC", "AUROC", "FPR95", "ECE (15 bins)", "Brier"):
        assert row in table
    assert "25.0%" in table and "100.0%" in table and "0.5000" in table


# -- the gallery -------------------------------------------------------------------------------
IMAGES = np.stack([np.full((8, 8, 3), 60 * i, np.uint8) for i in range(4)])


def test_the_gallery_picks_the_refused_and_the_wrongly_accepted():
    result = evaluation.summarize(PROBABILITIES, LABELS, RULE)
    # Image 1 is the only refusal; image 2 (certain class 1, label 0) the only accepted error.
    assert reporting.gallery_indices(result, "abstained").tolist() == [1]
    assert reporting.gallery_indices(result, "accepted_wrong").tolist() == [2]
    # Interval rule Z = 1 on image 1: means (.5, .5), std (.25, .25): the top class 0's low end
    # .25 is not above the rival's high end .75.
    assert reporting.refusing_part(result) == [
        None, "interval Z=1: low 0.25 <= rival high 0.75", None, None]
    with pytest.raises(ValueError, match="unknown gallery"):
        reporting.gallery_indices(result, "everything")


def test_the_gallery_orders_refusals_most_uncertain_first_and_names_the_refusing_part():
    # Threshold 0.9 on max_probability refuses images 1 (.5), 3 (.75); interval first in an
    # all rule refuses 1 (first part), so 3 is refused by the threshold part.
    rule = {"rule": "all", "rules": [RULE, {"rule": "threshold", "score": "max_probability", "threshold": 0.9}]}
    result = evaluation.summarize(PROBABILITIES, LABELS, rule)
    assert reporting.gallery_indices(result, "abstained").tolist() == [1, 3]
    reasons = reporting.refusing_part(result)
    assert reasons[1].startswith("interval Z=1") and reasons[3] == "max_probability 0.75 < 0.90"
    assert reporting.gallery_indices(result, "abstained", tiles=1).tolist() == [1]


def test_the_report_shows_the_gallery_when_given_the_images(tmp_path):
    result = evaluation.summarize(PROBABILITIES, LABELS, RULE)
    path = reporting.write_report(result, tmp_path, images=IMAGES, class_names=["cat, Felis", "dog"])
    text = path.read_text()
    for png in ("gallery_abstained.png", "gallery_accepted_wrong.png"):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Refused: 1 of 4 images; accepted but wrong: 1" in text
    with pytest.raises(ValueError, match="the 4 evaluated images"):
        reporting.write_gallery(result, IMAGES[:3], tmp_path)
    with pytest.raises(ValueError, match="1 class names for 2 classes"):
        reporting.write_gallery(result, IMAGES, tmp_path, ["cat"])


def test_a_gallery_with_nothing_to_show_is_not_drawn(tmp_path):
    right = evaluation.summarize(PROBABILITIES[:, [0, 3]], LABELS[[0, 3]], RULE)
    assert reporting.write_gallery(right, IMAGES[:2], tmp_path) == {}
    assert "no gallery" in reporting.write_report(right, tmp_path / "r", images=IMAGES[:2]).read_text()
