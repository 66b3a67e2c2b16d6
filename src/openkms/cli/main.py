"""The ``openkms`` command.

Exit codes scripts can rely on: 0 done, 1 refused or failed (a message on stderr), 2 a usage error (argparse,
or a refused value printed as ``ValidationException: ...``), 3 ``openkms audit verify`` found the trail
altered, 4 ``openkms status`` found something that needs attention, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from openkms import __version__
from openkms.cli import audit, backup, iam, keys, serve, status, usage
from openkms.cli.common import CliError
from openkms.storage.ports import StorageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openkms",
        description="openkms: a self-hosted key management service that speaks the AWS KMS API.",
        epilog=(
            "examples:\n"
            "  openkms serve --dev                      start a dev server (SQLite, key file, printed admin key)\n"
            "  openkms status --endpoint http://127.0.0.1:8080\n"
            "  openkms keys list --tag env=production\n"
            "  openkms iam create-user --user-name alice\n"
            "  openkms audit query --key-id alias/payments --since 24h\n"
            "  openkms usage --since 7d --json\n"
            "  openkms backup --output /backups/openkms.okb\n\n"
            "Every command takes --help. Exit codes: 0 done, 1 refused or failed, 2 a usage error or a refused\n"
            "value (printed as ValidationException: ...); some commands add their own (audit verify: 3 altered;\n"
            "status: 4 something needs attention)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"openkms {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    serve.add_parsers(subparsers)
    status.add_parser(subparsers)
    keys.add_parser(subparsers)
    iam.add_parser(subparsers)
    audit.add_parser(subparsers)
    usage.add_parser(subparsers)
    backup.add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runners = {
        "serve": serve.run_serve,
        "init": serve.run_init,
        "unseal": serve.run_unseal,
        "status": status.run,
        "keys": keys.run,
        "iam": iam.run,
        "audit": audit.run,
        "usage": usage.run,
        "backup": backup.run_backup,
        "restore": backup.run_restore,
    }
    try:
        return runners[args.command](args)
    except CliError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except StorageError as exc:  # the database refused or is unreachable: one line, no traceback
        print(f"openkms: database error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `openkms audit query ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
