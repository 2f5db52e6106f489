"""benchmarks/ood_rules.py on the tiny model: its inputs are what they say, and its figures
agree with the rules applied by hand (a combined rule never accepts more than its parts)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("skimage")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ood_rules.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ood_rules", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inputs_are_what_they_say(bench):
    kinds = bench.ood_sets(16, seed=0, count=10)
    assert set(kinds) == {"blank", "uniform noise", "Gaussian noise", "text", "photos"}
    for images in kinds.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
    blank = kinds["blank"]
    assert blank[0].max() == 0 and blank[-1].min() == 255  # black ... white
    assert all(np.ptp(image) == 0 for image in blank)
    assert all(np.ptp(image) > 0 for image in kinds["text"])  # ink on paper


def test_measure_agrees_with_the_rules_by_hand(bench, tiny_tflite, tiny_images):
    import tfuq
    from tfuq.runtime import abstain

    model = tfuq.load(tiny_tflite)
    images, labels = tiny_images
    kinds = bench.ood_sets(16, seed=0, count=10)
    result = bench.measure(model, images[:24], labels[:24], images[24:64], labels[24:64], kinds, 3)
    default = "interval and max_probability >= 0.5 (default)"
    for kind, images_of_kind in {"in distribution": images[:24], **kinds}.items():
        passes = model.run(images_of_kind, seed=3)
        expected = abstain.decide(passes, abstain.DEFAULT_RULE).accept.mean()
        assert result["acceptance"][default][kind] == pytest.approx(expected)
        assert result["acceptance"][default][kind] <= result["acceptance"]["interval Z=1 (paper)"][kind]
    for row in result["detection"].values():
        for figures in row.values():
            assert 0.0 <= figures["auroc"] <= 1.0 and 0.0 <= figures["fpr95"] <= 1.0
    assert "| interval Z=1 (paper) |" in bench.table(result)
