"""Hashes of the weights and samples of short fits: identical output = identical behaviour.

Run it before and after a change that must not change the numbers (a refactor), and compare:

    .venv/bin/python benchmarks/fingerprint.py > before.json   # on the old commit
    .venv/bin/python benchmarks/fingerprint.py > after.json    # on the new one
    diff before.json after.json

The cases cover both presets, the fast and autograd training paths, the three schedules' kinds of
timestep draw, two prediction types, and five samplers.
"""

from __future__ import annotations

import hashlib
import json
import sys

import simple_diffusion as sd

CASES = [
    ("two_gaussians", "default", {}),
    ("moons", "default", {}),
    ("two_gaussians", "seed", {}),
    ("correlated_6d", "default", {"model": {"prediction_type": "v"}, "train": {"timesteps": "logsnr"}}),
    ("three_gaussians", "default", {"train": {"timesteps": "discrete", "fast": False},
                                    "schedule": {"kind": "linear"}}),
]
SAMPLERS = [(None, None), ("ancestral", 30), ("dpmpp_3m", 20), ("heun", 10), ("ddim", 15)]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def main() -> None:
    out = {}
    for target, preset, config in CASES:
        config = {**config, "train": {**config.get("train", {}), "epochs": 3}}
        model = sd.fit(target, preset=preset, config=config, progress=False)
        row = {"weights": digest(b"".join(p.detach().numpy().tobytes() for p in model.net.parameters()))}
        for sampler, steps in SAMPLERS:
            x = model.sample(5000, seed=1, sampler=sampler, num_steps=steps)
            row[f"{sampler}-{steps}"] = digest(x.numpy().tobytes())
        out[f"{target}-{preset}-{len(out)}"] = row
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
