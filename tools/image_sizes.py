"""What each service image installs: pip resolves `.[<service>]` (a dry run, nothing is installed) and the sizes of
those distributions are summed from this environment's installed files. Compared with what `pip install .` of the
whole project installs (every image before the dependency groups).

    python tools/image_sizes.py            # table + bench/out/image_sizes.json

The sizes are those of this machine's wheels (torch here is the CPU build; a CUDA build in a cluster image is larger
still, for both columns alike).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "processor", "trainer", "diffusion")


def resolve(target: str) -> list[str]:
    """Distribution names pip would install for `target` into an empty environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                        "--report", str(report), target], cwd=ROOT, check=True)
        doc = json.loads(report.read_text())
    return [item["metadata"]["name"] for item in doc["install"]]


def installed_bytes(name: str) -> int:
    """Bytes of an installed distribution's files (its RECORD); 0 when it is not installed here."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def main() -> int:
    rows = {}
    for label, target in [("everything (pip install .)", ".[ingest,processor,trainer,diffusion]")] + [
            (s, f".[{s}]") for s in SERVICES]:
        names = resolve(target)
        sizes = {n: installed_bytes(n) for n in names if not re.fullmatch(r"scale[-_]diffusion", n, re.I)}
        rows[label] = {"packages": len(sizes), "mib": round(sum(sizes.values()) / 2**20, 1),
                       "largest": sorted(sizes, key=sizes.get, reverse=True)[:4]}
    before = rows["everything (pip install .)"]["mib"]
    print(f"{'image':<28} {'packages':>8} {'MiB':>8} {'vs before':>9}  largest")
    for label, row in rows.items():
        print(f"{label:<28} {row['packages']:>8} {row['mib']:>8.1f} {row['mib'] / before:>9.2f}  {', '.join(row['largest'])}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "image_sizes.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
