"""tfuq.training.qat: the tf-keras twin computes what the Keras 3 model computes, QAT fine-tuning
changes the Keras 3 weights and the result still converts to full-integer, and the
unsupported backbone fails clearly."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")

import keras  # noqa: E402

from tests._dummies import tiny  # noqa: E402
from tfuq.modeling.backbones import backbone_of, build_model  # noqa: E402
from tfuq.training import qat  # noqa: E402
from tfuq.training import train as training  # noqa: E402

SIZE = 16


def test_twin_matches_the_keras3_model_and_keeps_sampling():
    keras.utils.set_random_seed(0)
    model = build_model("small_cnn", 4, 24, image_size=SIZE, weights=None, dense=(8,),
                        dropout_placement="all", trainable_layers=3)
    # Batch norm away from its initial values, so that copying it is tested.
    images = tiny.images(8, seed=0, size=SIZE)[0].astype("float32")
    rng = np.random.default_rng(0)
    for layer in backbone_of(model).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.01, shape),
                               rng.normal(0, 0.01, shape), rng.uniform(0.5, 1.5, shape)])
    twin, pairs = qat.tf_keras_twin(model)
    assert len(pairs) == len([layer for layer in twin.layers if layer.name != "image"])
    trunk = keras.Model(model.inputs[0], model.get_layer("pool").output)
    import tf_keras

    twin_trunk = tf_keras.Model(twin.inputs, twin.get_layer("pool").output)
    np.testing.assert_allclose(twin_trunk(images).numpy(), np.asarray(trunk(images)), atol=1e-4)
    assert [layer.trainable for layer, _ in pairs] == [twin_layer.trainable for _, twin_layer in pairs]
    # The MC-dropout twin samples at inference: about half the pooled features drop.
    sampled = tf_keras.Model(twin.inputs, twin.get_layer("mc_dropout_1").output)
    features = twin_trunk(images).numpy()
    first, second = sampled(images).numpy(), sampled(images).numpy()
    assert not np.array_equal(first, second)
    dropped = np.mean((first == 0) & (features != 0)) / np.mean(features != 0)
    assert 0.4 < dropped < 0.6
    np.testing.assert_allclose(twin(images).numpy().sum(-1), 1.0, atol=1e-5)


def test_finetune_updates_weights_and_still_converts():
    from tfuq.conversion.convert import convert

    images, labels = tiny.images(256, seed=1, size=SIZE)
    keras.utils.set_random_seed(0)
    model = build_model("small_cnn", 4, SIZE, weights=None, dropout=0.3)
    trained = training.train(model, images, labels, epochs=4, progress=False, patience=None)
    before = [w.copy() for w in trained.model.get_weights()]
    result = qat.finetune(trained.model, images[:96], labels[:96], epochs=1, learning_rate=1e-4,
                          validation_split=0.25, progress=False)
    assert result.model is trained.model and result.epochs_run == 1
    # Six convolutions, six batch norms, six ReLUs, pooling and the classifier are wrapped.
    assert result.quantized_layers >= 14
    after = result.model.get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert all(changed)  # kernels, batch norm parameters and statistics all moved
    held_out, held_labels = tiny.images(60, seed=7, size=SIZE)
    converted = convert(result.model, held_out, passes=6, calibration_samples=40, check_samples=20)
    assert converted.summary.full_integer
    assert converted.check.agreement >= 0.9
    from tfuq.runtime import Model

    probabilities = Model(converted.to_bytes()).run(held_out, seed=1)  # (passes, batch, classes)
    assert np.mean(probabilities.mean(0).argmax(-1) == held_labels) >= 0.9


def test_mobilenetv3small_is_refused_with_a_reason():
    model = build_model("mobilenetv3small", 3, 32, weights=None)
    with pytest.raises(training.TrainError, match="QAT supports the small_cnn, resnet50") as error:
        qat.tf_keras_twin(model)
    assert "\n" not in str(error.value)
