"""The OOD score outputs of the masked graph: carried by default, int8 close to float computed
by an independent route (numpy on the Keras head's weights), off with ``scores=()``, and the
guard written by ``tfuq calibrate`` naming itself in ``tfuq predict``."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import tfuq  # noqa: E402
from tests._dummies import tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402
from tfuq.conversion.convert import ConversionError, convert  # noqa: E402
from tfuq.runtime import modelfile  # noqa: E402


def _energy_by_hand(keras_model, images, masks_by_layer, rates):
    """logsumexp over classes of the mean over passes of the logits, in numpy: the penultimate
    activations from Keras, then the MC-dropout masks and the last Dense written out."""
    dense_16, last = keras_model.layers[-3], keras_model.layers[-1]
    drop_1, drop_2 = keras_model.layers[-4], keras_model.layers[-2]
    upto = keras.Model(keras_model.inputs, drop_1.input)
    hidden = keras.ops.convert_to_numpy(upto(images.astype(np.float32)))  # (batch, 32)
    w1, b1 = (keras.ops.convert_to_numpy(w) for w in dense_16.weights)
    w2, b2 = (keras.ops.convert_to_numpy(w) for w in last.weights)
    m1, m2 = masks_by_layer[drop_1.name], masks_by_layer[drop_2.name]
    h = hidden[:, None, :] * m1[None] / (1 - rates[0])  # (batch, passes, 32)
    h = np.maximum(h @ w1 + b1, 0) * m2[None] / (1 - rates[1])
    mean_logits = (h @ w2 + b2).mean(axis=1)
    top = mean_logits.max(-1, keepdims=True)
    return (np.log(np.exp(mean_logits - top).sum(-1, keepdims=True)) + top)[:, 0]


def test_a_masked_conversion_carries_the_energy_score_close_to_float(tiny_keras, tiny_tflite, tiny_images):
    model = tfuq.load(tiny_tflite)
    assert model.score_names == ["energy"]
    assert [s.output for s in model.config.scores] == ["score_energy"]
    images = tiny_images[0][:12]
    probabilities, scores = model.run_scored(images, seed=5)
    np.testing.assert_array_equal(probabilities, model.run(images, seed=5))  # same invokes
    masks = model.masks(5)
    by_layer = {spec.layer: masks[spec.input].astype(np.float64) for spec in model.mask_specs}
    expected = _energy_by_hand(tiny_keras, images, by_layer, [s.rate for s in model.mask_specs])
    # int8 output: one quantization step of the score's range is about range / 255
    np.testing.assert_allclose(scores["energy"], expected, atol=0.1)
    assert np.corrcoef(scores["energy"], expected)[0, 1] > 0.98


def test_scores_can_be_left_out_and_need_masked_mode(tiny_keras):
    calibration, _ = tiny.images(48, seed=3)
    plain = convert(tiny_keras, calibration, passes=4, calibration_samples=32, check_samples=0,
                    scores=(), progress=False)
    assert plain.config.scores is None
    with pytest.raises(ConversionError, match="need masked mode"):
        convert(tiny_keras, calibration, mode="deterministic", scores=("energy",), check_samples=0,
                progress=False)


def test_a_config_whose_guard_reads_a_score_the_model_lacks_is_refused(tiny_tflite):
    from tfuq.runtime.config import ConfigError, ModelConfig

    _, config = modelfile.read(tiny_tflite)
    raw = {**config.to_dict(), "decision": {"rule": "ood", "score": "knn", "threshold": 1.0}}
    with pytest.raises(ConfigError, match="reads score 'knn'"):
        ModelConfig.from_dict(raw).checked()


def test_calibrate_writes_a_guard_and_predict_names_it(tiny_tflite, tmp_path, capsys):
    from PIL import Image

    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(open(tiny_tflite, "rb").read())
    x, y = tiny.images(240, seed=7)
    np.savez(tmp_path / "cal.npz", x=x, y=y)
    assert main(["calibrate", str(model_path), "--data", str(tmp_path / "cal.npz"), "--target-risk", "0.2",
                 "--within", "default", "--json", str(tmp_path / "c.json")]) == 0
    rule = tfuq.load(model_path).config.decision_rule()
    guard = rule["rules"][0]
    assert guard["rule"] == "ood" and guard["score"] == "energy"
    assert guard["calibration"]["n"] == 240 and guard["calibration"]["refused_on_calibration"] <= 0.05
    # A grey image (no colour class) scores far below the class images.
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    capsys.readouterr()
    main(["predict", str(model_path), str(tmp_path / "grey.png"), "--json"])
    record = json.loads(capsys.readouterr().out)
    record = record[0] if isinstance(record, list) else record
    assert "energy" in record["ood_scores"]
    if not record["accept"] and record["ood_scores"]["energy"] < guard["threshold"]:
        assert record["why"].startswith("out of distribution: energy")
