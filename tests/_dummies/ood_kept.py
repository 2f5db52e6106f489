"""A fake ``paper_experiment.py`` output folder of kept sets, for the OOD score benchmark's tests:
10 Gaussian classes of 16-dim features, logits from them, 6 noisy passes; OOD features are
isotropic noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write(out: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = Path(out) / "efficientnet_lite0" / "probabilities"
    folder.mkdir(parents=True, exist_ok=True)
    classes, passes, dims = 10, 6, 16
    means = rng.normal(size=(classes, dims)) * 3

    def make(name, n, ood=False):
        labels = rng.integers(classes, size=n)
        feats = rng.normal(size=(n, dims)) * 3 if ood else means[labels] + rng.normal(size=(n, dims))
        logits = feats @ means.T / 3
        noisy = np.stack([logits + rng.normal(size=logits.shape) * 0.5 for _ in range(passes)])
        p = np.exp(noisy - noisy.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        mean = noisy.mean(0)
        energy = np.log(np.exp(mean - mean.max(-1, keepdims=True)).sum(-1)) + mean.max(-1)
        np.savez(folder / f"{name}.npz", float=p.astype(np.float16), int8=p.astype(np.float16),
                 deterministic=p.mean(0).astype(np.float16), features=feats.astype(np.float16),
                 det_logits=logits.astype(np.float32), mc_mean_logits=mean.astype(np.float32),
                 int8_score_energy=energy.astype(np.float32), labels=np.full(n, -1) if ood else labels)

    make("test", 400)
    make("calibration", 200)
    make("train_bank", 300)
    make("ood_cifar10", 100, True)
    make("ood_blank", 50, True)
    return Path(out)
