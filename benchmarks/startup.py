"""How long the command takes to answer, and which imports the time goes to.

Each command runs in a fresh interpreter several times (median wall time), and once under
``python -X importtime`` to list its heaviest imports. ``train --help`` must not pay for torch;
``import simple_diffusion.api`` (what ``train`` loads) is shown for scale.

    .venv/bin/python benchmarks/startup.py

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/startup.json.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "simple-diffusion --version": ["-m", "simple_diffusion", "--version"],
    "simple-diffusion --help": ["-m", "simple_diffusion", "--help"],
    "simple-diffusion datasets": ["-m", "simple_diffusion", "datasets"],
    "simple-diffusion train --help": ["-m", "simple_diffusion", "train", "--help"],
    "python -c 'import simple_diffusion.api'": ["-c", "import simple_diffusion.api"],
}
REPEATS = 5


def wall_seconds(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, capture_output=True)
    return time.perf_counter() - start


def heaviest_imports(arguments: list[str], top: int = 4) -> list[tuple[str, float]]:
    """Packages other than ours by the cumulative time of their first import, in milliseconds."""
    report = subprocess.run([sys.executable, "-X", "importtime", *arguments], check=True,
                            capture_output=True, text=True).stderr
    totals: dict[str, float] = {}
    for line in report.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*([\w]+)$", line)
        if match and match.group(2) != "simple_diffusion":  # a package's own line (no dot)
            totals[match.group(2)] = int(match.group(1)) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def main() -> None:
    rows = []
    for label, arguments in COMMANDS.items():
        wall_seconds(arguments)  # warm the file cache
        seconds = statistics.median(wall_seconds(arguments) for _ in range(REPEATS))
        rows.append({"command": label, "seconds": seconds, "imports_ms": heaviest_imports(arguments)})
        print(f"{label}: {seconds:.3f} s", flush=True)
    lines = [
        f"Medians of {REPEATS} fresh interpreters (2-core CPU machine, torch "
        f"{_torch_version()}); the heaviest packages each command imports, from "
        "`python -X importtime`. Before the lazy imports of version 0.2 each of the first four "
        "took 2.6 s (they imported torch, POT, scikit-learn, matplotlib and pandas).",
        "",
        "| command | wall (s) | heaviest imports (cumulative ms) |",
        "| --- | ---: | --- |",
    ]
    for row in rows:
        imports = ", ".join(f"{name} {ms:.0f}" for name, ms in row["imports_ms"])
        lines.append(f"| `{row['command']}` | {row['seconds']:.3f} | {imports} |")
    write_section("startup", "\n".join(lines))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "startup.json").write_text(json.dumps(rows, indent=2) + "\n")


def _torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


if __name__ == "__main__":
    main()
