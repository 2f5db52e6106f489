"""Test-only: what tfuq's Python runtime says about photos, for the browser test to compare with.

    python web_demo/tools/e2e_reference.py MODEL.tflite OUT.json PHOTO.png [...] --seeds 0 12345 \
        --rule interval='{"rule": "interval", "conf_factor": 1}'

For each photo and seed: the model input from the photo rule the model names (version 1 or 2;
Pillow's decoding, reduction and resize, as `photo_vectors.py` computes it; a file without
`photo_rule` as version 1, as the page takes it), the probabilities of `tfuq.load(MODEL).run(input, seed)`
(float32, `(passes, classes)`), the model's out-of-distribution scores from the same invoke
(`Model.last_scores`, e.g. energy; none unless converted with `--scores energy`), the scores of
the passes (`tfuq.runtime.aggregate`: max_probability, predictive_entropy, ...), and the decision (accept, predicted, failed part) of the model's
own rule and of each `--rule NAME=JSON` by `tfuq.runtime.abstain.decide`. Run from the
repository root so its `tfuq` is imported.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's tfuq, not another installed one
from photo_vectors import expected as photo_rule  # noqa: E402


def _decision(decision) -> dict:
    failed = decision.failed_part
    return {
        "accept": bool(decision.accept),
        "predicted": int(decision.predicted),
        "failed_part": None if failed is None else int(failed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--seeds", nargs="+", default=["0"])
    parser.add_argument("--rule", action="append", default=[], metavar="NAME=JSON", help="another rule to decide by")
    args = parser.parse_args(argv)
    others = dict(item.split("=", 1) for item in args.rule)

    import tfuq
    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import SCORES, aggregate

    model = tfuq.load(args.model)
    height, width, _ = model.input_shape
    rule = model.config.input.photo_rule
    version = 1 if rule is None else rule.version
    results = []
    for path in args.photos:
        # EXIF orientation applied first, as the page's createImageBitmap(imageOrientation: "from-image").
        rgba = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGBA"))
        image = photo_rule(rgba, height, width, version)
        for seed in args.seeds:
            probabilities = model.run(image, seed=int(seed))[:, 0]  # (passes, classes)
            scores = dict(model.last_scores)
            rules = {"model": model.config.decision_rule(), **{name: json.loads(text) for name, text in others.items()}}
            decisions = {name: _decision(abstain.decide(probabilities, rule, scores)) for name, rule in rules.items()}
            summary = aggregate(probabilities)
            results.append({
                "photo": Path(path).name,
                "photo_size": [int(rgba.shape[0]), int(rgba.shape[1])],
                "seed": seed,
                "input_base64": base64.b64encode(image.tobytes()).decode(),
                # float32 values written exactly: every float32 is a double, repr round-trips.
                "probabilities": probabilities.astype(np.float64).tolist(),
                "scores": scores,
                "pass_scores": {name: float(summary.score(name)) for name in SCORES},
                "decisions": decisions,
            })
    Path(args.out).write_text(json.dumps({"model": args.model, "decision": model.config.decision_rule(), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
