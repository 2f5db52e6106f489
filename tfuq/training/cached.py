"""Fine-tune on cached features: run the frozen trunk once, train the rest many times.

    >>> model = build_model("efficientnetb0", 100, image_size=32, trainable_layers=8)  # doctest: +SKIP
    >>> result = train_cached(model, images, labels, views=2, cache="cache/")         # doctest: +SKIP

When only the last layers of a backbone train (``trainable_layers`` of
``tfuq.modeling.backbones.build_model``), every epoch of ordinary training pushes each image through
the whole frozen trunk again, which is most of the cost on a CPU. Here the model is cut where
nothing before trains (:func:`split_model`), the trunk's outputs are computed once per image
and kept on disk (float16), and only the rest (the trainable layers, any frozen layers between
them, the head) runs during training. The rest shares its layers with the model, so the model
that :func:`train_cached` returns is the whole trained classifier.

Augmentation must happen before the trunk, so it is done ``views`` times per training image,
each a seeded random crop (reflect-padded by an eighth of the side, cropped back to the size)
and a random horizontal flip; every epoch draws one of the cached views per image. Validation
images are not augmented. The cut is legal only where a single tensor connects the two parts
(not inside a residual block): :func:`split_model` moves it earlier, adding frozen layers to
the rest, until it is.

A cache folder holds one subfolder per (trunk weights, images, seed, cut). View ``k`` depends
only on the seed and ``k``, so a stopped run reuses every finished view, and a later run with
more views computes only the new ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfuq.data.common import check_images, check_labels
from tfuq.training.train import (
    TrainError,
    TrainResult,
    check_fit_settings,
    check_outliers,
    compile_for_fit,
    early_stopping,
    fit_history,
    stratified_split,
)

CACHE_FORMAT = "tfuq-feature-cache-2"  # 2: the views count is not part of the key


@dataclass
class Split:
    """A model cut in two: ``trunk`` (image to features, nothing trainable) and ``rest``
    (features to probabilities), sharing layers with the model."""

    trunk: object
    rest: object
    cut: str  # name of the first layer of the rest ("" when the cut is the backbone's output)
    feature_shape: tuple[int, ...]


def _single(tensors, what: str):
    tensors = list(tensors) if isinstance(tensors, list | tuple) else [tensors]
    if len(tensors) != 1:
        raise TrainError(f"{what} has {len(tensors)} inputs or outputs; cached training needs one")
    return tensors[0]


def _nested_backbone(model):
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 else None


def _first_trainable(layers) -> int | None:
    for index, layer in enumerate(layers):
        if layer.trainable and layer.trainable_weights:
            return index
    return None


def _cut_inside(graph, start: int):
    """``(index, rest)``: the latest layer at or before ``start`` of ``graph.layers`` whose
    single input alone computes the graph's output (a cut outside every residual branch)."""
    import keras

    for index in range(start, 0, -1):
        layer = graph.layers[index]
        try:
            tensor = _single(layer.input, layer.name)
            return index, keras.Model(tensor, graph.output, name=f"{graph.name}_rest")
        except (ValueError, TrainError):  # "not connected to inputs": a branch crosses the cut
            continue
    return 0, None


def split_model(model) -> Split:
    """Cut ``model`` (one image input, one output) after its last frozen layer.

    Works on models of ``tfuq.modeling.backbones.build_model`` (a nested backbone followed by the
    head) and on flat functional models. The trunk holds no trainable weight; the rest holds
    every trainable one.

    Raises:
        TrainError: several inputs/outputs, or no trainable layer at all.
    """
    import keras

    image = _single(model.inputs, model.name)
    _single(model.outputs, model.name)
    backbone = _nested_backbone(model)
    if backbone is not None:
        node = backbone._inbound_nodes[-1]
        into_backbone = _single(node.input_tensors, backbone.name)
        out_of_backbone = _single(node.output_tensors, backbone.name)
        inner = _first_trainable(backbone.layers)
        tail = keras.Model(out_of_backbone, model.output, name=f"{model.name}_head")
        if inner is None:  # the whole backbone is frozen: cut at its output
            trunk = keras.Model(image, out_of_backbone, name=f"{model.name}_trunk")
            return Split(trunk, tail, "", tuple(out_of_backbone.shape[1:]))
        index, inner_rest = _cut_inside(backbone, inner)
        if inner_rest is not None:
            cut = _single(backbone.layers[index].input, backbone.name)
            front = keras.Model(image, into_backbone, name=f"{model.name}_front")
            inner_trunk = keras.Model(backbone.input, cut, name=f"{backbone.name}_trunk")
            x = keras.Input(shape=tuple(image.shape[1:]), name="image")
            trunk = keras.Model(x, inner_trunk(front(x)), name=f"{model.name}_trunk")
            features = keras.Input(shape=tuple(cut.shape[1:]), name="features")
            rest = keras.Model(features, tail(inner_rest(features)), name=f"{model.name}_rest")
            split = Split(trunk, rest, backbone.layers[index].name, tuple(cut.shape[1:]))
            _check_frozen(split.trunk)
            return split
        # every cut inside the backbone crosses a branch: fall through to the outer graph
    start = _first_trainable(model.layers)
    if start is None:
        raise TrainError(f"{model.name} has no trainable layer; nothing to train")
    index, rest = _cut_inside(model, start)
    if rest is None or index == 0:
        raise TrainError(f"{model.name}: the first trainable layer is the first layer; cache nothing, train normally")
    cut = _single(model.layers[index].input, model.name)
    trunk = keras.Model(image, cut, name=f"{model.name}_trunk")
    split = Split(trunk, rest, model.layers[index].name, tuple(cut.shape[1:]))
    _check_frozen(split.trunk)
    return split


def _check_frozen(trunk) -> None:
    trainable = [weight.path for weight in trunk.trainable_weights]
    if trainable:
        raise TrainError(f"the trunk would hold trainable weights ({trainable[0]}, ...); cannot cache it")


# -- augmentation ----------------------------------------------------------------------------
def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop and flip of every uint8 ``(N, H, W, 3)`` image (the CIFAR recipe).

    Each image is reflect-padded by ``max(1, side // 8)`` pixels (4 for 32x32), cropped back to
    its size at a random offset, and flipped left-right with probability 1/2.
    """
    images = check_images(images)
    count, height, width = images.shape[:3]
    pad_y, pad_x = max(1, height // 8), max(1, width // 8)
    padded = np.pad(images, ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="reflect")
    tops = rng.integers(0, 2 * pad_y + 1, size=count)
    lefts = rng.integers(0, 2 * pad_x + 1, size=count)
    flips = rng.random(count) < 0.5
    out = np.empty_like(images)
    for k in range(count):
        crop = padded[k, tops[k] : tops[k] + height, lefts[k] : lefts[k] + width]
        out[k] = crop[:, ::-1] if flips[k] else crop
    return out


# -- the cache -------------------------------------------------------------------------------
def _fingerprint(split: Split, images: np.ndarray, seed: int, validation: np.ndarray | None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, split.cut, split.feature_shape, seed]).encode())
    for weight in split.trunk.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    if validation is not None:
        digest.update(np.ascontiguousarray(validation).tobytes())
    return digest.hexdigest()[:16]


def _features(trunk, images: np.ndarray, path: Path, batch_size: int, say, what: str) -> np.ndarray:
    """The trunk's float16 outputs for ``images``, from ``path`` if it is there, else computed
    (a progress line every ~10%) and written atomically."""
    if path.exists():
        return np.load(path, mmap_mode="r")
    out = np.empty((len(images), *trunk.outputs[0].shape[1:]), dtype=np.float16)
    started, step = time.perf_counter(), max(batch_size, (len(images) // 10) // batch_size * batch_size)
    for begin in range(0, len(images), step):
        chunk = images[begin : begin + step].astype(np.float32)
        out[begin : begin + len(chunk)] = trunk.predict(chunk, batch_size=batch_size, verbose=0)
        done = begin + len(chunk)
        rate = done / max(time.perf_counter() - started, 1e-9)
        say(f"  {what}: {done}/{len(images)} images ({rate:.1f}/s)")
    if not np.all(np.isfinite(out)):
        raise TrainError(f"{what}: the trunk's outputs overflow float16; cannot cache them")
    partial = path.with_name(path.name + ".part.npy")
    np.save(partial, out)
    os.replace(partial, path)
    return np.load(path, mmap_mode="r")


def _batches(features: list[np.ndarray], labels: np.ndarray, batch_size: int, seed: int,
             outliers: list[np.ndarray] | None = None):
    """Batches of ``batch_size`` labelled images; with ``outliers`` (cached views of "none of
    these" images), each batch also gets ``batch_size // 2`` of them, labelled -1, drawn in a
    seeded order that runs through all outliers before repeating one."""
    import keras

    outlier_batch = max(1, batch_size // 2) if outliers else 0

    class ViewBatches(keras.utils.PyDataset):
        """Shuffled batches; every epoch picks one cached view per image (seeded by epoch)."""

        def __init__(self):
            super().__init__()
            self.epoch = 0
            self._draw()

        def _draw(self):
            rng = np.random.default_rng([seed, self.epoch])
            self.order = rng.permutation(len(labels))
            self.views = rng.integers(len(features), size=len(labels))
            if outlier_batch:
                needed = len(self) * outlier_batch
                count = len(outliers[0])
                rounds = -(-needed // count)
                self.outlier_order = np.concatenate([rng.permutation(count) for _ in range(rounds)])[:needed]
                self.outlier_views = rng.integers(len(outliers), size=needed)

        def __len__(self):
            return math.ceil(len(labels) / batch_size)

        def __getitem__(self, index):
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            x = np.empty((len(chosen), *features[0].shape[1:]), dtype=np.float32)
            for view in np.unique(self.views[chosen]):
                mine = self.views[chosen] == view
                x[mine] = features[view][chosen[mine]]
            if not outlier_batch:
                return x, labels[chosen]
            span = slice(index * outlier_batch, (index + 1) * outlier_batch)
            picked, views = self.outlier_order[span], self.outlier_views[span]
            extra = np.empty((len(picked), *features[0].shape[1:]), dtype=np.float32)
            for view in np.unique(views):
                mine = views == view
                extra[mine] = outliers[view][picked[mine]]
            y = np.concatenate([labels[chosen], np.full(len(picked), -1, labels.dtype)])
            return np.concatenate([x, extra]), y

        def on_epoch_end(self):
            self.epoch += 1
            self._draw()

    return ViewBatches()


def train_cached(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    cache: str | os.PathLike,
    views: int = 2,
    epochs: int = 10,
    batch_size: int = 32,
    validation_split: float = 0.1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    learning_rate: float = 1e-3,
    patience: int | None = 3,
    monitor: str = "val_loss",
    label_smoothing: float = 0.0,
    seed: int = 0,
    feature_batch_size: int = 64,
    say: Callable[[str], None] | None = None,
    callbacks: list | None = None,
    outliers: np.ndarray | None = None,
    outlier_weight: float = 0.5,
) -> TrainResult:
    """Like ``tfuq.training.train.train``, but the frozen trunk runs once per (image, view).

    Args:
        model: a Keras model whose first layers are frozen (see :func:`split_model`).
        images: uint8 ``(N, H, W, 3)`` at the model's input size; labels ``(N,)`` class indices.
        cache: folder for the cached features (created; reused when the trunk, images,
            views and seed match).
        views: augmented views per training image (random crop + flip), at least 1.
        feature_batch_size: batch size of the trunk's forward passes.
        say: progress lines (default: stderr).
        outliers: uint8 ``(M, H, W, 3)`` images of none of the classes, at the model's input
            size, for outlier exposure (``tfuq.modeling.layers.OutlierExposureLoss``): their
            trunk features are cached in as many augmented views as the training images', and
            each batch gets ``batch_size // 2`` of them. None: no outlier exposure.
        outlier_weight: the weight of the outlier term (Hendrycks et al. use 0.5).
        Other arguments as in ``tfuq.training.train.train`` (one device, no strategy).

    Returns:
        A ``TrainResult`` whose ``model`` is ``model`` with the trained weights and whose
        ``settings`` record the cut, the views and the cache.
    """
    import keras

    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    images = check_images(images, "training images")
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise TrainError(f"views must be a positive integer, got {views!r}")
    check_fit_settings(epochs, batch_size, learning_rate, patience, monitor, label_smoothing)
    input_size = tuple(model.inputs[0].shape[1:3])
    classes = int(model.outputs[0].shape[-1])
    labels = check_labels(labels, len(images), classes)
    if images.shape[1:3] != input_size:
        raise TrainError(f"images are {images.shape[1]}x{images.shape[2]}, the model takes {input_size[0]}x{input_size[1]}")
    if validation is not None:
        val_images = check_images(validation[0], "validation images")
        val_labels = check_labels(validation[1], len(val_images), classes)
        train_images, train_labels = images, labels
    elif validation_split > 0:
        train_index, val_index = stratified_split(labels, validation_split, seed)
        if len(val_index) == 0:
            raise TrainError(f"a validation split of {validation_split} leaves no validation images")
        train_images, train_labels = images[train_index], labels[train_index]
        val_images, val_labels = images[val_index], labels[val_index]
    else:
        if validation_split < 0:
            raise TrainError(f"validation fraction must be in [0, 1), got {validation_split}")
        train_images, train_labels, val_images, val_labels = images, labels, None, None

    weight = check_outliers(outliers, outlier_weight, input_size)

    split = split_model(model)
    folder = Path(cache) / _fingerprint(split, train_images, seed, val_images)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cache.json").write_text(json.dumps({
        "format": CACHE_FORMAT, "model": model.name, "cut": split.cut, "feature_shape": split.feature_shape,
        "views": max(views, len(list(folder.glob("view_*[0-9].npy")))), "seed": seed,
        "train_images": len(train_images),
        "validation_images": 0 if val_images is None else len(val_images),
        "augmentation": "reflect-pad side//8, random crop, random horizontal flip",
    }, indent=1) + "\n")
    say(f"cached training: trunk up to {split.cut or 'the backbone output'} -> features "
        f"{split.feature_shape}; {views} augmented view(s) of {len(train_images)} images; cache {folder}")
    started = time.perf_counter()
    train_features = []
    for view in range(views):
        viewed = augment(train_images, np.random.default_rng([seed, view]))
        train_features.append(_features(split.trunk, viewed, folder / f"view_{view}.npy",
                                         feature_batch_size, say, f"view {view + 1}/{views}"))
    outlier_features = None
    if outliers is not None:
        # Keyed by the outlier images themselves, so other outliers never reuse these.
        outlier_folder = folder / f"outliers_{_fingerprint(split, outliers, seed, None)}"
        outlier_folder.mkdir(exist_ok=True)
        outlier_features = []
        for view in range(views):
            viewed = augment(outliers, np.random.default_rng([seed, view, 1]))
            outlier_features.append(_features(split.trunk, viewed, outlier_folder / f"view_{view}.npy",
                                              feature_batch_size, say, f"outliers, view {view + 1}/{views}"))
    val_features = None
    if val_images is not None:
        val_features = _features(split.trunk, val_images, folder / "validation.npy",
                                 feature_batch_size, say, "validation")
    feature_seconds = time.perf_counter() - started

    rest = split.rest
    compile_for_fit(rest, learning_rate, label_smoothing, weight)
    all_callbacks = list(callbacks or [])
    early = None
    validation_data = None
    if val_features is not None:
        validation_data = (np.asarray(val_features, dtype=np.float32), val_labels)
        if patience is not None:
            early = early_stopping(monitor, patience)
            all_callbacks.append(early)
    fit_started = time.perf_counter()
    fitted = rest.fit(
        _batches(train_features, train_labels, batch_size, seed, outlier_features),
        validation_data=validation_data,
        validation_batch_size=max(batch_size, 256),
        epochs=epochs,
        callbacks=all_callbacks,
        verbose=0,
    )
    fit_seconds = time.perf_counter() - fit_started
    history, epochs_run, best_epoch = fit_history(fitted, monitor)
    return TrainResult(
        model=model,
        history=history,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        train_samples=len(train_images),
        validation_samples=0 if val_images is None else len(val_images),
        seconds=time.perf_counter() - started,
        strategy="none",
        replicas=1,
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "validation_split": None if validation is not None else validation_split,
            "learning_rate": learning_rate,
            "patience": patience,
            "monitor": monitor,
            "label_smoothing": label_smoothing,
            "seed": seed,
            **({"outliers": len(outliers), "outlier_weight": outlier_weight} if outliers is not None else {}),
            "cached_features": {
                "cut": split.cut,
                "feature_shape": list(split.feature_shape),
                "views": views,
                "cache": str(folder),
                "feature_seconds": round(feature_seconds, 1),
                "fit_seconds": round(fit_seconds, 1),
            },
            "keras": keras.__version__,
        },
    )
