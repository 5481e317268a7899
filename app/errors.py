"""One-line errors for the command line: a bad data file, label, path or class gets its message, not a traceback.

`LS_LLAMA_DEBUG=1` (or `--debug` anywhere on the command line) shows the full traceback instead. Errors that are not
about the user's input (a bug, an out-of-memory) keep their traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from jsonargparse import ArgumentError

from core.class_paths import ClassPathNotAllowed
from lightning_modules.backbone.probe import AttentionProbeError

# what a user's config, data or paths can cause; their messages name the file, line or field
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # DataFormatError, ClassPathNotAllowed, bad settings
    KeyError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ArgumentError,
    ConnectionError,
    AttentionProbeError,  # the mask strategy did not take effect: the message says where
)
DEBUG_ENV = "LS_LLAMA_DEBUG"


def debugging(argv: list[str]) -> bool:
    """Whether the user asked for tracebacks (`LS_LLAMA_DEBUG=1` or `--debug`)."""
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes") or "--debug" in argv


def _innermost(message: str) -> str:
    """The first real error of jsonargparse's "Does not validate against any of the Union subtypes" report (an
    exception in a class's __init__ is reported inside it; `model` is `LightningModule | None`)."""
    if not message.startswith("Does not validate against any of the Union subtypes"):
        return message
    reasons = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    reasons = [r for r in reasons if not r.startswith("Expected a <class 'NoneType'>")]
    return reasons[0] if reasons else message


def one_line(error: BaseException) -> str:
    """`error: <Type>: <message>` on one line (the first line of a long message), with the way to see more."""
    full = str(error).strip()
    message = _innermost(full) or repr(error)
    if isinstance(error, KeyError) and len(error.args) == 1:
        message = str(error.args[0])
    first, _, rest = message.partition("\n")
    more = " (...)" if rest.strip() else ""
    kind = "" if isinstance(error, ClassPathNotAllowed) or message != full else f"{type(error).__name__}: "
    return f"error: {kind}{first}{more}  [{DEBUG_ENV}=1 shows the traceback]"


def run_with_one_line_errors(main: Callable[[], Any]) -> int:
    """Call `main()` on `sys.argv` (without `--debug`); print a user error as one line on stderr and return 2."""
    debug = debugging(sys.argv[1:])
    sys.argv = [arg for arg in sys.argv if arg != "--debug"]
    try:
        main()
    except USER_ERRORS as error:
        if debug:
            raise
        print(one_line(error), file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    return 0
