"""What every CLI module shares: the consoles, the error boundary, the --warehouse option.

One copy, so every command turns hub errors into the same message and exit code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from sharehub.errors import SharehubError

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(func: F) -> F:
    """Turn hub errors into a clear message and a non-zero exit, at the boundary only."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SharehubError as exc:
            # Text, not markup: the message starts with "[feed=… batch=…]", which rich
            # would otherwise take for a style tag and drop.
            err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def warehouse_option(func: F) -> F:
    """``--warehouse PATH``, defaulting to $SHAREHUB_WAREHOUSE via Settings."""
    return click.option(
        "--warehouse",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Warehouse DuckDB file (default: $SHAREHUB_WAREHOUSE, else ./data/warehouse.duckdb).",
    )(func)
