#!/usr/bin/env python3
"""Fill manifests/base/secrets/*.env from the committed *.env.example files.

kustomize's secretGenerator reads the *.env files; they hold credentials, so
they are gitignored and generated here with random values: every key left
empty in the example gets a fresh random hex token, every other key keeps its
(non-secret) example value, and the store URL is built from the generated
PostgreSQL credentials. Existing *.env files are kept unless --force, so
re-running never rotates a password a running database already uses.

    python scripts/generate_k8s_secrets.py [SECRETS_DIR] [--force]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "manifests" / "base" / "secrets"
STORE_URL = "postgresql+psycopg://{user}:{password}@{host}:5432/driftloop_store"
POSTGRES_HOST = "driftloop-postgres.driftloop.svc.cluster.local"


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def write_env(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)


def generate(directory: Path, force: bool = False) -> list[Path]:
    examples = sorted(directory.glob("*.env.example"))
    if not examples:
        raise FileNotFoundError(f"no *.env.example files in {directory}")
    # postgres first: the store URL embeds its credentials
    examples.sort(key=lambda p: p.name != "postgres.env.example")
    written: list[Path] = []
    postgres: dict[str, str] = {}
    for example in examples:
        target = example.with_name(example.name.removesuffix(".example"))
        if target.exists() and not force:
            values = read_env(target)
        else:
            values = {
                key: value or secrets.token_hex(24) for key, value in read_env(example).items()
            }
            if target.name == "store.env":
                values["url"] = STORE_URL.format(
                    user=postgres["POSTGRES_USER"],
                    password=postgres["POSTGRES_PASSWORD"],
                    host=POSTGRES_HOST,
                )
            write_env(target, values)
            written.append(target)
        if target.name == "postgres.env":
            postgres = values
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--force", action="store_true", help="regenerate existing *.env files")
    args = parser.parse_args(argv)
    try:
        written = generate(args.directory, force=args.force)
    except (OSError, ValueError, KeyError) as exc:
        print(f"generate_k8s_secrets: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"secrets in {args.directory} already exist (use --force to regenerate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
