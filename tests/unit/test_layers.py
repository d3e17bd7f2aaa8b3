"""The layers, as the import graph must show them (docs/ARCHITECTURE.md "Layers").

From the bottom: the generated contract (scalediffusion.v1); the platform (scalediffusion.platform: settings, logs,
RPC and server bootstrap, S3, Kafka, key layout); the domain (the simulator, the city, driving and policies, media
formats); the services (each talks to the others only through the contract); the dev stack (scalediffusion.stack),
which may import everything. A module may import its own layer and the layers below it, never one above; a service
never imports another service. Every import counts, also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Ordered bottom-up. A module belongs to the first layer with a prefix that matches it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("contract", ("scalediffusion.v1",)),
    ("platform", ("scalediffusion.platform",)),
    ("domain", ("scalediffusion.sim", "scalediffusion.city", "scalediffusion.driving", "scalediffusion.imaging",
                "scalediffusion.leaderboard", "scalediffusion.policy", "scalediffusion.synthetic",
                "scalediffusion.uploader", "scalediffusion.vp8", "scalediffusion.webm")),
    ("services", ("services",)),
    ("stack", ("scalediffusion.stack",)),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str | None:
    for name, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import in a file; relative imports resolved against `module`."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b` may import the module a.b: check both names.
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import that goes up a layer, or from one service into another."""
    bad = []
    files = [*root.glob("scalediffusion/**/*.py"), *root.glob("services/**/*.py")]
    for path in sorted(files):
        module = _module_name(path, root)
        if module == "scalediffusion":
            continue  # the package root: a docstring, no imports
        own = layer_of(module)
        if own is None:
            bad.append(f"{path.relative_to(root)}: module {module} is in no layer (add it to LAYERS)")
            continue
        reported: set[int] = set()  # one report per import statement (`from a import b` names a and a.b)
        for line, target in imports_of(path, module):
            if not target.startswith(("scalediffusion.", "services.")) or line in reported:
                continue
            other = layer_of(target)
            if other is None:
                continue  # `from scalediffusion import x` names the package; x is checked as its own name
            where = f"{path.relative_to(root)}:{line}"
            if RANK[other] > RANK[own]:
                bad.append(f"{where}: {own} module {module} imports {other} module {target}")
                reported.add(line)
            elif own == other == "services" and module.split(".")[1] != target.split(".")[1]:
                bad.append(f"{where}: service module {module} imports another service's {target}")
                reported.add(line)
    return bad


def test_no_import_goes_up_a_layer_or_across_services():
    assert violations(ROOT) == []
    assert imports_of(ROOT / "scalediffusion" / "__init__.py", "scalediffusion") == []  # the root skipped above


def test_every_module_of_the_package_root_is_in_a_layer():
    loose = [p.stem for p in (ROOT / "scalediffusion").glob("*.py") if p.stem != "__init__"]
    assert all(layer_of(f"scalediffusion.{name}") for name in loose), loose


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("name,source,expect", [
    ("scalediffusion/platform/s3.py", "from services.ingest import records\n", "platform module scalediffusion.platform.s3 imports services"),
    ("scalediffusion/platform/s3.py", "def f():\n    import scalediffusion.sim.vehicle\n", "imports domain module scalediffusion.sim.vehicle"),
    ("scalediffusion/platform/s3.py", "from scalediffusion import policy\n", "imports domain module scalediffusion.policy"),
    ("scalediffusion/platform/s3.py", "from ..stack import procs\n", "imports stack module scalediffusion.stack"),
    ("scalediffusion/sim/loop.py", "from scalediffusion.stack.procs import spawn\n", "domain module scalediffusion.sim.loop imports stack"),
    ("services/trainer/train.py", "from services.ingest.records import x\n", "imports another service's services.ingest.records"),
    ("scalediffusion/newthing.py", "x = 1\n", "is in no layer"),
])
def test_a_deliberate_violation_is_caught(tmp_path, name, source, expect):
    root = _tree(tmp_path, {name: source})
    found = violations(root)
    assert len(found) == 1 and expect in found[0], found


def test_imports_down_the_layers_are_allowed(tmp_path):
    root = _tree(tmp_path, {
        "scalediffusion/platform/s3.py": "from scalediffusion.v1 import common_pb2\nfrom . import settings\n",
        "scalediffusion/sim/loop.py": "from scalediffusion.platform import keys\nfrom scalediffusion import uploader\n",
        "services/trainer/train.py": "from scalediffusion.sim import value\nfrom services.trainer import model\n",
        "scalediffusion/stack/cli.py": "from services.ingest import admin\nfrom scalediffusion.sim import loop\n",
    })
    assert violations(root) == []


# -- each service's image installs only its own dependency group (pyproject.toml extras) -----------------------------

SERVICE_ROOTS = {
    "ingest": ["services.ingest.server", "services.ingest.admin"],
    "processor": ["services.processor.server"],
    # The trainer image also runs training, the embedded evaluator and the CARLA evaluation Jobs.
    "trainer": ["services.trainer.server", "services.trainer.train", "scalediffusion.sim.evaluate",
                "services.trainer.carla_eval", "services.trainer.carla_agent"],
    "diffusion": ["services.diffusion.server", "services.diffusion.train"],
}
# Installed into the trainer image from CARLA's own repositories (services/trainer/Dockerfile), not from PyPI.
NOT_FROM_PYPI = {"leaderboard", "srunner"}


def _module_path(root: Path, module: str) -> Path | None:
    for candidate in (root / (module.replace(".", "/") + ".py"), root / module.replace(".", "/") / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(root: Path, starts: list[str]) -> set[str]:
    """Top-level names of the third-party packages that the modules reachable from `starts` import."""
    import sys

    seen, todo, found = set(), list(starts), set()
    while todo:
        module = todo.pop()
        path = _module_path(root, module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for _, target in imports_of(path, module):
            top = target.split(".")[0]
            if top in ("scalediffusion", "services"):
                parts = target.split(".")
                todo += [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


def _requirement_closure(names: list[str]) -> set[str]:
    """Distributions (normalised names) installed by these requirement strings, with their own dependencies."""
    import re
    from importlib import metadata

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    out, todo = set(), [re.split(r"[ ;<>=!\[~]", r, maxsplit=1)[0] for r in names]
    while todo:
        name = norm(todo.pop())
        if name in out:
            continue
        out.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!\[~]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    return out


@pytest.mark.parametrize("service", sorted(SERVICE_ROOTS))
def test_a_services_dependency_group_covers_what_its_code_imports(service):
    import re
    import tomllib
    from importlib import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _requirement_closure(project["dependencies"] + project["optional-dependencies"][service])
    providers = metadata.packages_distributions()
    missing = {}
    for name in sorted(third_party_imports(ROOT, SERVICE_ROOTS[service]) - NOT_FROM_PYPI):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(name, [name])}
        if not dists & installed:
            missing[name] = sorted(dists)
    assert missing == {}, f"{service} imports these but `pip install .[{service}]` would not install them"
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    assert f'pip install --no-cache-dir "./[{service}]"' in dockerfile  # "./": hadolint takes ".[x]" for a package


def test_the_ingest_image_carries_no_machine_learning_stack():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _requirement_closure(project["dependencies"] + project["optional-dependencies"]["ingest"])
    assert not installed & {"torch", "onnxruntime-gpu", "opencv-python", "moderngl", "carla", "kubernetes", "triton"}
