"""The ``openkms`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from openkms import __version__
from openkms.cli import iam, serve
from openkms.cli.common import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openkms",
        description="openkms: a self-hosted key management service that speaks the AWS KMS API.",
    )
    parser.add_argument("--version", action="version", version=f"openkms {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    serve.add_parsers(subparsers)
    iam.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runners = {"serve": serve.run_serve, "init": serve.run_init, "unseal": serve.run_unseal, "iam": iam.run}
    try:
        return runners[args.command](args)
    except CliError as exc:
        print(f"openkms: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
