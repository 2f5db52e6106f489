"""Where the images come from: ``.npz`` shards, tfds TFRecord files, image files.

Each source is a ``PTransform`` from the pipeline root to example dicts (``image`` uint8
``(H, W, 3)``, ``set``, ``id``, ``order``, ``label``) that
:class:`tfuq.beam.handler.TfuqModelHandler` takes. Workers need numpy, Beam and, for
TFRecords and image files, Pillow; no TensorFlow.

- :class:`ReadNpz`: a glob of ``.npz`` files (``x`` uint8 NHWC, optional ``y``), one file
  per work item; ``id`` is ``<file name>:<index>``.
- :class:`ReadTfds`: TFRecord files written by tensorflow-datasets (``cifar100``, the
  ``cifar100_corrupted`` builder of :mod:`tfuq.data.cifar100_corrupted`): Beam's
  ``ReadFromTFRecord`` gives the serialized ``tf.train.Example`` bytes, parsed here with
  protobuf (a schema of five small messages, wire-compatible with TensorFlow's
  ``example.proto``), the PNG ``image`` decoded with Pillow.
- :class:`ReadImageFiles`: a folder (recursively) or glob pattern of image files, each
  decoded by :func:`decode_photo`; with ``labelled=True`` a folder of class folders, listed by
  :func:`tfuq.data.class_folder_files` (as ``tfuq.data.load_folder`` reads it).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from tfuq.data import DataError, class_folder_files
from tfuq.runtime import photo
from tfuq.runtime.photo import IMAGE_SUFFIXES


class SourceError(ValueError):
    """A source that names no files or holds something that is not images."""


# -- one photo rule ----------------------------------------------------------------------------
def decode_photo(
    path: str, height: int, width: int, rule: photo.PhotoRule = photo.RULE
) -> np.ndarray:
    """An image file as the model's uint8 ``(height, width, 3)`` input.

    The one place the pipelines decode a file: by ``rule``, the photo rule the model carries
    (``photo.rule_of(model.config)``, as ``tfuq predict`` and ``tfuq evaluate`` follow it; a
    model without ``photo_rule`` stretches). Paths with a scheme (``gs://``, ``s3://``, ...)
    are read through Beam's FileSystems.

    Raises:
        ValueError: the file cannot be read or decoded (``PhotoError`` is a ValueError).
    """
    if "://" in path:
        try:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                return photo.read(handle.read(), (height, width), rule)
        except OSError as error:
            raise ValueError(f"cannot read: {error}") from None
    return photo.read(path, (height, width), rule)


# -- helpers ---------------------------------------------------------------------------------
def match(pattern: str) -> list[str]:
    """The files a glob pattern (any FileSystems scheme) names, sorted; SourceError if none."""
    try:
        results = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError with a long message
        raise SourceError(f"cannot list {pattern}: {str(error).splitlines()[0]}") from None
    paths = sorted(result.path for result in results)
    if not paths:
        raise SourceError(f"no files match {pattern}")
    return paths


def _check_image(image: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(f"{what}: expected uint8 (H, W, 3) pixels, got {image.dtype} {image.shape}")
    if image.shape[:2] != tuple(size):
        raise SourceError(
            f"{what}: images are {image.shape[:2]}, the model takes {tuple(size)}: resize them "
            "first (the pipelines do not resize arrays, so that results equal tfuq evaluate's)"
        )
    return image


# -- .npz shards -----------------------------------------------------------------------------
class _NpzExamples(beam.DoFn):
    def __init__(self, set_name: str, size: tuple[int, int]):
        self.set_name, self.size = set_name, size

    def process(self, path: str) -> Iterator[dict]:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            content = handle.read()
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            if "x" not in data:
                raise SourceError(f"{path} has no array named 'x'")
            images = data["x"]
            labels = data["y"] if "y" in data else None
        name = os.path.basename(path)
        for index, image in enumerate(images):
            yield {
                "image": _check_image(image, self.size, path),
                "set": self.set_name,
                "id": f"{name}:{index}",
                "order": f"{name}:{index:012d}",
                "label": None if labels is None else int(labels[index]),
            }


class ReadNpz(beam.PTransform):
    """Examples from the ``.npz`` files ``pattern`` matches, one file per work item."""

    def __init__(self, pattern: str, size: tuple[int, int], set_name: str = "data"):
        super().__init__()
        self.paths, self.size, self.set_name = match(pattern), tuple(size), set_name

    def expand(self, root):
        return (
            root
            | "Files" >> beam.Create(self.paths)
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(_NpzExamples(self.set_name, self.size))
        )


# -- TFRecords of tensorflow-datasets ----------------------------------------------------------
_EXAMPLE_CLASS = None


def _example_class():
    """``tf.train.Example`` as a protobuf message class built here, without TensorFlow.

    ``Features.feature`` is declared as a repeated key/value entry: the wire form of a proto
    ``map<string, Feature>``, which is how TensorFlow declares it.
    """
    global _EXAMPLE_CLASS
    if _EXAMPLE_CLASS is not None:
        return _EXAMPLE_CLASS
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="tfuq_example.proto", package="tfuq_example", syntax="proto3"
    )
    fields = descriptor_pb2.FieldDescriptorProto
    repeated, optional = fields.LABEL_REPEATED, fields.LABEL_OPTIONAL

    def message(name: str, *members: tuple[str, int, int, int, str]) -> None:
        described = proto.message_type.add(name=name)
        for field_name, number, label, kind, type_name in members:
            field = described.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = f".tfuq_example.{type_name}"

    message("BytesList", ("value", 1, repeated, fields.TYPE_BYTES, ""))
    message("FloatList", ("value", 1, repeated, fields.TYPE_FLOAT, ""))
    message("Int64List", ("value", 1, repeated, fields.TYPE_INT64, ""))
    message("Feature", ("bytes_list", 1, optional, fields.TYPE_MESSAGE, "BytesList"),
            ("float_list", 2, optional, fields.TYPE_MESSAGE, "FloatList"),
            ("int64_list", 3, optional, fields.TYPE_MESSAGE, "Int64List"))
    message("FeatureEntry", ("key", 1, optional, fields.TYPE_STRING, ""),
            ("value", 2, optional, fields.TYPE_MESSAGE, "Feature"))
    message("Features", ("feature", 1, repeated, fields.TYPE_MESSAGE, "FeatureEntry"))
    message("Example", ("features", 1, optional, fields.TYPE_MESSAGE, "Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    _EXAMPLE_CLASS = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tfuq_example.Example")
    )
    return _EXAMPLE_CLASS


def parse_example(serialized: bytes) -> dict[str, list]:
    """A serialized ``tf.train.Example`` as ``{feature name: list of values}``."""
    example = _example_class().FromString(serialized)
    parsed = {}
    for entry in example.features.feature:
        values = entry.value
        if values.HasField("bytes_list"):
            parsed[entry.key] = list(values.bytes_list.value)
        elif values.HasField("int64_list"):
            parsed[entry.key] = list(values.int64_list.value)
        elif values.HasField("float_list"):
            parsed[entry.key] = list(values.float_list.value)
        else:
            parsed[entry.key] = []
    return parsed


def _decode_png(content: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


class _TfdsExample(beam.DoFn):
    def __init__(self, set_name: str, size: tuple[int, int]):
        self.set_name, self.size = set_name, size

    def process(self, serialized: bytes) -> Iterator[dict]:
        features = parse_example(serialized)
        if "image" not in features or not features["image"]:
            raise SourceError(f"{self.set_name}: a TFRecord example has no 'image' feature")
        image = _check_image(_decode_png(features["image"][0]), self.size, self.set_name)
        from tfuq.runtime.masks import image_key

        key = f"{image_key(image):016x}"
        ident = features["id"][0].decode() if features.get("id") else key
        label = features.get("label")
        yield {
            "image": image,
            "set": self.set_name,
            "id": ident,
            "order": ident,
            "label": int(label[0]) if label else None,
        }


def tfds_files(name: str, split: str, data_dir: str | os.PathLike | None = None) -> str:
    """The glob of the TFRecord files tfds prepared for ``name`` (e.g. ``cifar100`` or
    ``cifar100_corrupted/fog_3``) and ``split``, in its newest version folder."""
    root = Path(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()
    base = name.partition("/")[0]
    folder = root / name
    versions = sorted(
        (p for p in folder.glob("*") if p.is_dir() and p.name[:1].isdigit()),
        key=lambda p: tuple(int(v) for v in p.name.split(".") if v.isdigit()),
    )
    if not versions:
        raise SourceError(
            f"{name} is not prepared in {root}: prepare it once with tensorflow-datasets "
            f"(tfds.load({name!r}) or tfuq evaluate --data {name}:{split})"
        )
    return str(versions[-1] / f"{base}-{split}.tfrecord-*")


class ReadTfds(beam.PTransform):
    """Examples from TFRecord files tfds wrote (a glob; see :func:`tfds_files`)."""

    def __init__(self, pattern: str, size: tuple[int, int], set_name: str):
        super().__init__()
        match(pattern)  # fail before the pipeline starts when nothing is there
        self.pattern, self.size, self.set_name = pattern, tuple(size), set_name

    def expand(self, root):
        return (
            root
            | "Records" >> beam.io.ReadFromTFRecord(self.pattern)
            | "Parse" >> beam.ParDo(_TfdsExample(self.set_name, self.size))
        )


# -- image files ------------------------------------------------------------------------------
def _image_files(location: str, labelled: bool = False) -> tuple[list[tuple[str, int | None]], list[str]]:
    """``([(path, label or None)], class names)`` for a folder, a file or a glob of image files."""
    if any(char in location for char in "*?["):
        paths = [p for p in match(location) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if labelled:
            raise SourceError("labels come from class folders: give a folder, not a glob")
        if not paths:
            raise SourceError(f"no image files match {location}")
        return [(p, None) for p in paths], []
    root = Path(location)
    if root.is_file() and not labelled:
        return [(location, None)], []
    if not root.is_dir():
        raise SourceError(f"not a folder, file or glob pattern: {location}")
    if not labelled:
        paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f"{location} holds no image files")
        return [(p, None) for p in paths], []
    try:
        found, classes = class_folder_files(root)
    except DataError as error:
        raise SourceError(str(error)) from None
    return [(str(path), label) for path, label in found], classes


class _PhotoExample(beam.DoFn):
    def __init__(self, set_name: str, size: tuple[int, int], rule: photo.PhotoRule):
        self.set_name, self.size, self.rule = set_name, size, rule

    def process(self, item: tuple[str, int | None]) -> Iterator:
        path, label = item
        try:
            image = decode_photo(path, *self.size, self.rule)
        except ValueError as error:  # one bad file does not stop the run
            yield beam.pvalue.TaggedOutput("errors", {"id": path, "error": str(error)})
            return
        yield {"image": image, "set": self.set_name, "id": path, "order": path, "label": label}


class ReadImageFiles(beam.PTransform):
    """Examples from image files, decoded by ``photo_rule`` (the model's); undecodable files
    go to the ``errors`` output."""

    def __init__(self, location: str, size: tuple[int, int], set_name: str = "images",
                 labelled: bool = False, photo_rule: photo.PhotoRule = photo.RULE):
        super().__init__()
        self.items, self.classes = _image_files(location, labelled)
        self.size, self.set_name, self.photo_rule = tuple(size), set_name, photo_rule

    def expand(self, root):
        return (
            root
            | "Files" >> beam.Create(self.items)
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(_PhotoExample(self.set_name, self.size, self.photo_rule)).with_outputs(
                "errors", main="examples")
        )
