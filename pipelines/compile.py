"""Compile the pipelines to KFP IR YAML: ``python -m pipelines.compile --out pipelines/compiled``.

The component image is whatever ``DRIFTLOOP_BASE_IMAGE`` (settings.base_image)
says when this runs; the checked-in YAML uses the default image.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from kfp import compiler

DEFAULT_OUT = Path(__file__).resolve().parent / "compiled"


def pipelines() -> dict[str, Callable]:
    """Pipeline name (file stem) → pipeline function; the one list of what ships."""
    from pipelines.retraining import retraining_pipeline
    from pipelines.training import training_pipeline

    return {"training": training_pipeline, "retraining": retraining_pipeline}


def compile_pipeline(name: str, out_dir: Path) -> Path:
    known = pipelines()
    if name not in known:
        raise KeyError(f"unknown pipeline {name!r} (known: {', '.join(sorted(known))})")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    compiler.Compiler().compile(known[name], package_path=str(path))
    return path


def compile_all(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    return [compile_pipeline(name, out_dir) for name in pipelines()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.compile", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("names", nargs="*", help="pipelines to compile (default: all)")
    args = parser.parse_args(argv)
    try:
        paths = [compile_pipeline(name, args.out) for name in args.names or list(pipelines())]
    except KeyError as exc:
        parser.error(exc.args[0])
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
