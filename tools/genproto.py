"""Generate every stub from protos/: Python (messages, grpc, connectrpc gRPC-Web) and TypeScript (protoc-gen-es).

Examples:
    python tools/genproto.py            # regenerate in place
    python tools/genproto.py --check    # exit 1 and list files when committed stubs are stale

The TypeScript plugin comes from clients/web/node_modules (run `npm ci` in clients/web first).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "protos"
PY_OUT = ROOT  # stubs land in scalediffusion/v1/, matching the proto package path
PY_PACKAGE_DIR = Path("scalediffusion") / "v1"
TS_OUT = ROOT / "clients" / "web" / "src" / "gen"
ES_PLUGIN = ROOT / "clients" / "web" / "node_modules" / ".bin" / "protoc-gen-es"
# Next to the running interpreter, so generation works without an activated venv.
CONNECT_PLUGIN = Path(sys.executable).parent / "protoc-gen-connectrpc"
PY_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_connect.py")


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", *args, *proto_files()])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code} for {args[0]}")


def generate(py_out: Path, ts_out: Path) -> None:
    """Writes Python stubs under py_out/scalediffusion/v1 and TS stubs under ts_out."""
    (py_out / PY_PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"--python_out={py_out}",
            f"--pyi_out={py_out}",
            f"--grpc_python_out={py_out}",
            f"--plugin=protoc-gen-connectrpc={CONNECT_PLUGIN}",
            f"--connectrpc_out={py_out}",
            "--connectrpc_opt=protobuf=google,io=async",
        ]
    )
    (py_out / PY_PACKAGE_DIR / "__init__.py").write_text('"""Generated from protos/ by tools/genproto.py. DO NOT EDIT."""\n')
    if not ES_PLUGIN.exists():
        raise SystemExit(f"{ES_PLUGIN} is missing: run `npm ci` in clients/web first")
    ts_out.mkdir(parents=True, exist_ok=True)
    _protoc([f"--plugin=protoc-gen-es={ES_PLUGIN}", f"--es_out={ts_out}", "--es_opt=target=ts"])


def _generated_files(py_root: Path, ts_root: Path) -> dict[str, Path]:
    files = {}
    for p in (py_root / PY_PACKAGE_DIR).glob("*"):
        if p.name == "__init__.py" or p.name.endswith(PY_SUFFIXES):
            files[f"py:{p.name}"] = p
    for p in ts_root.rglob("*.ts"):
        files[f"ts:{p.relative_to(ts_root)}"] = p
    return files


def stale_files() -> list[str]:
    """Names of generated files that differ from a fresh generation (missing, extra or changed)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_py, fresh_ts = Path(tmp) / "py", Path(tmp) / "ts"
        generate(fresh_py, fresh_ts)
        fresh = _generated_files(fresh_py, fresh_ts)
        committed = _generated_files(PY_OUT, TS_OUT)
        names = set(fresh) | set(committed)
        return sorted(
            n
            for n in names
            if n not in fresh or n not in committed or not filecmp.cmp(fresh[n], committed[n], shallow=False)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale generated files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: {name}")
        return 1 if stale else 0
    for p in (PY_OUT / PY_PACKAGE_DIR).glob("*"):
        if p.name.endswith(PY_SUFFIXES):
            p.unlink()
    shutil.rmtree(TS_OUT, ignore_errors=True)
    generate(PY_OUT, TS_OUT)
    print(f"generated {len(proto_files())} protos into {PY_PACKAGE_DIR} and {TS_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
