"""The Beam pipelines behind ``tfuq evaluate --runner`` and ``tfuq predict --runner``.

One pipeline reads every data set, runs :class:`~tfuq.beam.handler.TfuqModelHandler` in
``RunInference`` and writes one record per image as sharded JSONL or Parquet. The driver then
reads the records back and merges them into the report ``tfuq evaluate`` prints: records are
sorted into source order (file, then index) and their per-image summaries go through
:func:`tfuq.evaluation.summarize_aggregates`, so on ``.npz`` data the numbers equal the
single-process ones bit for bit. The same code runs on the DirectRunner and on Flink, Spark or
Dataflow; only the pipeline options differ.

Data specs (``--data``) follow the one grammar of :func:`tfuq.data.parse_spec`:
``npz:<glob>`` (or a path ending ``.npz``), ``cifar100:<split>`` and
``cifar100_corrupted/<corruption>_<severity>:test`` (TFRecords tfds prepared, in
``--data-dir``), ``cifar100_corrupted/*:test`` (all 75 CIFAR-100-C sets in one pipeline, with
tables per severity and per corruption), ``tfrecord:<glob>`` (tfds-written files),
``folder:<dir>`` (one subfolder per class, listed as ``tfuq.data`` lists it) and
``files:<glob>`` (unlabelled). Image files are decoded by the photo rule the model carries.
``featureless:<count>`` images are generated in memory for training, not read: refused here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfuq.runtime.aggregate import COLUMNS, DERIVED_COLUMNS, Aggregate

FORMATS = ("jsonl", "parquet")
RUNNERS = {"direct": "DirectRunner", "flink": "FlinkRunner", "spark": "SparkRunner",
           "dataflow": "DataflowRunner"}
_PREFIX = "records"


# -- data specs ------------------------------------------------------------------------------
def sources(spec: str, size: tuple[int, int], set_name: str = "data",
            data_dir: str | None = None, labelled: bool = True,
            photo_rule=None) -> list[tuple[str, object]]:
    """``[(set name, PTransform)]`` for one data spec (see the module docstring).

    ``photo_rule`` decodes image files: the model's (``photo.rule_of(model.config)``); None
    is the current rule. Raises SourceError for a spec that is malformed or that only
    :func:`tfuq.data.load_spec` reads (tfds slicing, a corruption applied on the fly,
    generated featureless images).
    """
    from tfuq.beam import sources as src
    from tfuq.data import DataError, parse_spec
    from tfuq.data.corruptions import CORRUPTIONS, SEVERITIES, config_name
    from tfuq.data.datasets import ALL_CORRUPTIONS, FEATURELESS
    from tfuq.runtime import photo

    photo_rule = photo.RULE if photo_rule is None else photo_rule
    try:
        parsed = parse_spec(spec)
    except DataError as error:
        raise src.SourceError(str(error)) from None
    source, target = parsed.source, parsed.target
    if source == FEATURELESS:
        raise src.SourceError(f"{spec}: featureless images are generated in memory for training "
                              "(--outliers), not read by the Beam pipelines; drop --runner")
    if parsed.corruption is not None and source != "cifar100_corrupted":
        raise src.SourceError(f"{spec}: the Beam pipelines read prepared CIFAR-100-C sets "
                              "(cifar100_corrupted/<config>:test), they corrupt nothing themselves")
    if source == "npz":
        return [(set_name, src.ReadNpz(target, size, set_name))]
    if source == "tfrecord":
        return [(set_name, src.ReadTfds(target, size, set_name))]
    if source in ("folder", "files"):
        reader = src.ReadImageFiles(target, size, set_name, labelled=labelled and source == "folder",
                                    photo_rule=photo_rule)
        return [(set_name, reader)]
    if "[" in target:
        raise src.SourceError(f"{spec}: tfds slicing is for tfuq evaluate without --runner")
    if source == "cifar100":
        return [(set_name, src.ReadTfds(src.tfds_files("cifar100", target, data_dir), size,
                                        set_name))]
    if parsed.corruption != ALL_CORRUPTIONS:
        files = src.tfds_files(f"cifar100_corrupted/{parsed.config}", "test", data_dir)
        return [(set_name, src.ReadTfds(files, size, set_name))]
    configs = [config_name(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    return [(name, src.ReadTfds(src.tfds_files(f"cifar100_corrupted/{name}", "test", data_dir),
                                size, name)) for name in configs]


def pipeline_options(runner: str, extra: Sequence[str] = ()):
    """Beam ``PipelineOptions`` for ``runner`` (a key of :data:`RUNNERS`) plus ``extra`` flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    flags = [f"--runner={RUNNERS[runner]}", *extra]
    if runner == "direct" and not any(f.startswith("--direct_") for f in extra):
        # one worker process per core; say --direct_running_mode=in_memory for one process
        flags += ["--direct_num_workers=0", "--direct_running_mode=multi_processing"]
    return PipelineOptions(flags)


# -- records ---------------------------------------------------------------------------------
def _parquet_schema(keep_passes: bool):
    import pyarrow as pa

    fields = [
        ("key", pa.string()), ("set", pa.string()), ("id", pa.string()), ("order", pa.string()),
        ("label", pa.int64()), ("seed", pa.string()), ("predicted_label", pa.string()),
        ("accept", pa.bool_()),
        ("model_scores", pa.string()),
    ]
    per_class = pa.list_(pa.float64())
    kinds = {"predicted": pa.int64(), "mean": per_class, "std": per_class}
    fields += [(name, kinds.get(name, pa.float64())) for name in COLUMNS
               if name not in DERIVED_COLUMNS]
    if keep_passes:
        fields.append(("passes", pa.list_(pa.list_(pa.float32()))))
    return pa.schema(fields)


def _write(records, folder: str, fmt: str, keep_passes: bool):
    import apache_beam as beam

    prefix = os.path.join(folder, _PREFIX)
    if fmt == "jsonl":
        return (records | "Json" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
                | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))
    return records | "Write" >> beam.io.WriteToParquet(
        prefix, _parquet_schema(keep_passes), file_name_suffix=".parquet")


def _compact(records: list[dict]) -> list[dict]:
    # 100 classes as two lists of Python floats cost ~7 KB per record, as arrays ~2 KB: the
    # difference between 5 GB and 1.5 GB for the full CIFAR-100-C evaluation.
    for record in records:
        record["mean"] = np.asarray(record["mean"], dtype=np.float64)
        record["std"] = np.asarray(record["std"], dtype=np.float64)
        if record.get("passes") is not None:
            record["passes"] = np.asarray(record["passes"], dtype=np.float32)
    return records


def read_records(folder: str | os.PathLike) -> list[dict]:
    """Every record in ``folder`` (JSONL or Parquet shards), sorted by set, then source order.

    ``mean`` and ``std`` (and ``passes``) come back as numpy arrays.
    """
    import io

    from apache_beam.io.filesystems import FileSystems

    folder = os.fspath(folder)
    records = []

    def shards(suffix: str) -> list[str]:
        pattern = FileSystems.join(folder, f"{_PREFIX}-*{suffix}")
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)

    def content(path: str) -> bytes:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            return handle.read()

    for path in shards(".jsonl"):
        records += _compact(
            [json.loads(line) for line in content(path).decode().splitlines() if line.strip()])
    parquet = shards(".parquet")
    if parquet:
        import pyarrow.parquet as pq

        for path in parquet:
            records += _compact(pq.read_table(io.BytesIO(content(path))).to_pylist())
    if not records:
        raise ValueError(f"no records in {folder}")
    records.sort(key=lambda r: (r["set"], r["order"], r["key"]))
    return records


def _aggregate(records: list[dict], conf_factor: float) -> Aggregate:
    """The :class:`Aggregate` the records carry, as :func:`aggregate` computed it per image."""
    stored = [name for name in COLUMNS if name not in DERIVED_COLUMNS]
    return Aggregate.from_columns(
        {name: [r[name] for r in records] for name in stored}, passes=0, conf_factor=conf_factor
    )


def merge(records: list[dict], rule: dict, data_set: str = "data", ood_set: str | None = None,
          score: str | None = None, passes: int | None = None):
    """The :class:`tfuq.evaluation.Evaluation` of the records of ``data_set`` (and ``ood_set``)."""
    from tfuq import evaluation
    from tfuq.runtime import decision

    rule = decision.check_rule(rule)
    conf_factor = decision.rule_conf_factor(rule)
    chosen = [r for r in records if r["set"] == data_set]
    if not chosen:
        raise ValueError(f"no records of set {data_set!r}")
    if any(r["label"] is None for r in chosen):
        raise ValueError(f"records of set {data_set!r} have no labels")
    summary = _aggregate(chosen, conf_factor)
    labels = np.array([r["label"] for r in chosen], dtype=np.int64)
    ood = ood_scores = None
    if ood_set is not None:
        theirs = [r for r in records if r["set"] == ood_set]
        ood = _with_passes(_aggregate(theirs, conf_factor), passes)
        ood_scores = _model_scores(theirs)
    result = evaluation.summarize_aggregates(_with_passes(summary, passes), labels, rule, ood,
                                             score=score, scores=_model_scores(chosen),
                                             ood_scores=ood_scores)
    return result


def _model_scores(records: list[dict]) -> dict[str, np.ndarray]:
    """The model's OOD scores the records carry, ``{name: (n,)}`` (records of older runs: none)."""
    parsed = [json.loads(r.get("model_scores") or "{}") for r in records]
    names = set(parsed[0]) if parsed else set()
    return {name: np.array([p[name] for p in parsed], dtype=np.float64)
            for name in sorted(names) if all(name in p for p in parsed)}


def _with_passes(summary: Aggregate, passes: int | None) -> Aggregate:
    from dataclasses import replace

    return summary if passes is None else replace(summary, passes=passes)


def corruption_tables(records: list[dict], rule: dict, score: str | None = None,
                      passes: int | None = None) -> dict:
    """Reports per CIFAR-100-C set, pooled per severity and pooled per corruption."""
    from tfuq.data.corruptions import parse_config_name

    by_set: dict[str, list[dict]] = {}
    for record in records:
        by_set.setdefault(record["set"], []).append(record)
    groups: dict[str, dict[str, list[dict]]] = {"sets": {}, "by_severity": {}, "by_corruption": {}}
    for name, chosen in sorted(by_set.items()):
        try:
            corruption, severity = parse_config_name(name)
        except ValueError:
            continue
        groups["sets"][name] = chosen
        groups["by_severity"].setdefault(str(severity), []).extend(chosen)
        groups["by_corruption"].setdefault(corruption, []).extend(chosen)
    tables = {}
    for table, members in groups.items():
        tables[table] = {}
        for name, chosen in members.items():
            relabelled = [{**r, "set": "pooled"} for r in chosen]
            relabelled.sort(key=lambda r: (r["order"], r["key"]))
            tables[table][name] = merge(relabelled, rule, "pooled", score=score,
                                        passes=passes).report
    return tables


def format_tables(tables: dict) -> str:
    """The per-severity and per-corruption tables as plain text (the seed paper's columns)."""
    lines = []
    for table, title in (("by_severity", "severity"), ("by_corruption", "corruption")):
        if not tables.get(table):
            continue
        lines += [f"{title:<20}{'images':>8}{'F1 all':>9}{'F1 acc':>9}{'ignored':>9}"
                  f"{'ign. wrong':>11}{'AURC':>8}"]
        for name, report in tables[table].items():
            accepted = report["micro_f1_accepted"]
            wrong = report["ignored_would_be_wrong"]
            lines.append(
                f"{name:<20}{report['images']:>8}{report['micro_f1_all']:>9.4f}"
                f"{'n/a' if accepted is None else f'{accepted:.4f}':>9}{report['ignored']:>9.1%}"
                f"{'n/a' if wrong is None else f'{wrong:.1%}':>11}{report['aurc']:>8.4f}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


# -- running ---------------------------------------------------------------------------------
def load_model(path: str, threads: int | None = None, backend: str = "auto"):
    """:func:`tfuq.load` for any path Beam's FileSystems read (``gs://...`` too)."""
    from tfuq import runtime

    if "://" not in path:
        return runtime.load(path, threads=threads, backend=backend)
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as handle:
        model = runtime.load(handle.read(), threads=threads, backend=backend)
    model.path = path
    return model


def run(
    model_path: str,
    data: Sequence[tuple[str, object]],
    records: str,
    *,
    fmt: str = "jsonl",
    options=None,
    rule: dict | None = None,
    seed: int = 0,
    seeding: str = "shared",
    threads: int | None = None,
    keep_passes: bool = False,
    batch_size: int | None = None,
) -> dict:
    """Run the pipeline: ``data`` (from :func:`sources`) through the model into ``records``.

    A local ``records`` folder is written whole or not at all: the shards go to a sibling
    folder first, renamed into place when the pipeline succeeded. Returns
    ``{"errors": [{"id", "error"}], "records": folder}``.
    """
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference

    from tfuq.beam.handler import TfuqModelHandler

    if fmt not in FORMATS:
        raise ValueError(f"unknown records format {fmt!r}; choose one of {', '.join(FORMATS)}")
    local = "://" not in records
    target = records
    if local:
        if Path(records).exists() and any(Path(records).iterdir()):
            raise ValueError(f"records folder {records} exists and is not empty")
        if not Path(records).resolve().parent.is_dir():
            raise ValueError(f"folder does not exist: {Path(records).resolve().parent}")
        target = f"{Path(records).resolve()}.partial-{os.getpid()}"
        shutil.rmtree(target, ignore_errors=True)
    errors_folder = os.path.join(target, "errors")
    handler = TfuqModelHandler(
        model_path, rule, seed=seed, seeding=seeding, threads=threads, keep_passes=keep_passes,
        min_batch_size=batch_size, max_batch_size=batch_size,
    )
    try:
        with beam.Pipeline(options=options) as root:
            examples, errors = [], []
            for name, transform in data:
                read = root | f"Read {name}" >> transform
                if isinstance(read, beam.pvalue.DoOutputsTuple):
                    examples.append(read.examples)
                    errors.append(read.errors)
                else:
                    examples.append(read)
            merged = examples | "Sets" >> beam.Flatten()
            results = merged | "Infer" >> RunInference(handler)
            _write(results, target, fmt, keep_passes)
            if errors:
                (errors | "Errors" >> beam.Flatten()
                 | "ErrorJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
                 | "WriteErrors" >> beam.io.WriteToText(os.path.join(errors_folder, "errors"),
                                                        file_name_suffix=".jsonl"))
    except BaseException:
        if local:
            shutil.rmtree(target, ignore_errors=True)
        raise
    from apache_beam.io.filesystems import FileSystems

    found = []
    pattern = FileSystems.join(errors_folder, "errors-*.jsonl")
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        with FileSystems.open(match.path, compression_type="uncompressed") as handle:
            found += [json.loads(line) for line in handle.read().decode().splitlines() if line.strip()]
    if local:
        shutil.rmtree(errors_folder, ignore_errors=True)
        if Path(records).exists():
            Path(records).rmdir()
        os.replace(target, records)
    return {"errors": found, "records": records}
