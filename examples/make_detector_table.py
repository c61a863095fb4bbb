"""Generate examples/detector.csv: 5,000 made-up particle-detector events with correlated columns.

energy (GeV)      skewed (log-normal), always positive
momentum (GeV)    strongly correlated with energy
angle (rad)       symmetric, in [-pi/2, pi/2]
efficiency        a fraction in [0, 1], lower for high-energy events
hits              a whole number (Poisson, more for high energy)

    python examples/make_detector_table.py
"""

from pathlib import Path

import numpy as np
import pandas as pd


def make(n: int = 5000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    energy = rng.lognormal(mean=1.0, sigma=0.6, size=n)
    momentum = energy * rng.normal(0.92, 0.03, n) + rng.normal(0, 0.1, n)
    angle = np.clip(rng.normal(0, 0.45, n), -np.pi / 2, np.pi / 2)
    efficiency = rng.beta(8, 2 + 0.3 * energy)
    hits = rng.poisson(4 + 2.5 * np.sqrt(energy))
    return pd.DataFrame({"energy": energy, "momentum": momentum, "angle": angle,
                         "efficiency": efficiency, "hits": hits})


if __name__ == "__main__":
    make().to_csv(Path(__file__).with_name("detector.csv"), index=False, float_format="%.5g")
