"""The ``aisys`` command: ``report``, ``prompts …``, ``spool …``, ``eval …``, ``review …``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aisys`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="aisys", description="aisys: production-grade AI calls, from the shell."
    )
    from aisys._version import __version__

    parser.add_argument("--version", action="version", version=f"aisys {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    from aisys.cli import eval as evals
    from aisys.cli import prompts, report, review, spool

    report.add_parser(commands)
    prompts.add_parser(commands)
    spool.add_parser(commands)
    evals.add_parser(commands)
    review.add_parser(commands)
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":  # pragma: no cover - `python -m aisys.cli`
    sys.exit(main())
