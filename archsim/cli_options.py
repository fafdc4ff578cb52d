"""Option parsing shared by the `archsim` commands: the parser class and the value types.

Every bad option is one line naming the option (`--seed: expected an integer >= 0, got '-1'`),
raised as an `ArchsimError` so the CLI prints it like any other bad input: no usage dump, exit 2.
Options are never matched by prefix (`--sample` is not `--samples`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import re
import socket
import sys
from collections.abc import Callable, Iterator

from archsim.errors import ArchsimError, SpecError

_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
_ADDRESS = re.compile(
    rf"^(?:(?P<scheme>{'|'.join(_SCHEMES)})://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
    r":(?P<port>\d{1,5})$"
)


class OptionError(ArchsimError):
    """A command-line option or argument is missing, unknown or has a bad value."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that never matches option prefixes and reports errors in one line."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """Raise instead of printing the usage and exiting: the CLI prints one line."""
        raise OptionError(message.removeprefix("argument "))


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in low..high (high None: no upper bound)."""
    expected = f">= {low}" if high is None else f"{low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            message = f"expected an integer {expected}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


seed = integer(0)
"""A run seed: numpy's SeedSequence takes any integer >= 0 (negative seeds are refused)."""

SEED_HELP = (
    "seed of the whole run (0): every random draw of the command (random zoo weights, "
    "synthetic inputs, test matrices, device programming and read noise) comes from numpy "
    "Generators seeded from this one number; the same seed gives the same results"
)
"""What `--seed` means, the same in every command that has it."""


def add_digital(p: argparse.ArgumentParser) -> None:
    """`--digital-policy` and `--digital-layer`: heterogeneous placement of digital work
    (`archsim.mapping.hetero`), overriding the chip preset's `[mapping]`."""
    from archsim.spec.digital import DIGITAL_POLICIES

    p.add_argument(
        "--digital-policy",
        choices=DIGITAL_POLICIES,
        help="which digital unit runs each digital op: spread (fixed by op name) or balanced "
        "(earliest finish); default: the chip's, else spread without digital nodes, balanced "
        "with them",
    )
    p.add_argument(
        "--digital-layer",
        action="append",
        metavar="NAME",
        help="run this static-weight linear layer on the digital nodes instead of AIMC "
        "(repeatable; replaces the chip's [mapping] digital_layers)",
    )


def add_seed(p: argparse.ArgumentParser) -> None:
    """The `--seed` option (see SEED_HELP)."""
    p.add_argument("--seed", type=seed, default=0, help=SEED_HELP)


def command(
    sub: argparse._SubParsersAction, name: str, summary: str, examples: tuple[str, ...]
) -> argparse.ArgumentParser:
    """A subcommand whose help starts with `summary` and ends with worked examples, each a
    command line after `archsim NAME` (printed as written, not re-wrapped)."""
    lines = "\n".join(f"  archsim {name} {e}".rstrip() for e in examples)
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"examples:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def version() -> str:
    """`archsim X.Y.Z`: the installed package's version (importlib.metadata)."""
    try:
        return f"archsim {importlib.metadata.version('archsim')}"
    except importlib.metadata.PackageNotFoundError:
        return "archsim (not installed: no package metadata)"


count = integer(1)
"""A count of samples, vectors, workers, ... (>= 1)."""


def check_names(args: argparse.Namespace, options: tuple[str, ...]) -> None:
    """Refuse an empty preset / workload name or path (`--device ''`): it would otherwise read
    as "not given" and be silently replaced by the default."""
    for option in options:
        value = getattr(args, option, None)
        for v in value if isinstance(value, list) else [value]:
            if v is not None and not v.strip():
                raise OptionError(f"--{option}: expected a preset name or a file path, got {v!r}")


def dims(values: list[str] | None) -> dict[str, int]:
    """Repeated --dim NAME=SIZE options (symbolic ONNX dimensions) as {name: size}."""
    sizes: dict[str, int] = {}
    for text in values or ():
        name, sep, size = text.partition("=")
        name, size = name.strip(), size.strip()
        if not sep or not name or not size.isdigit() or int(size) < 1:
            raise OptionError(
                f"--dim: expected NAME=SIZE with SIZE a positive integer, got {text!r}"
            )
        if name in sizes:
            raise OptionError(f"--dim: {name} given twice")
        sizes[name] = int(size)
    return sizes


MAX_TIME_S = 1e10
"""Latest time since programming accepted (about 317 years): far past any retention data; the
drift models are power laws that, pushed further, drive conductances to zero and ranges to inf."""


def times(text: str) -> list[float]:
    """An argparse type: a comma list of times since programming in s, 0..MAX_TIME_S."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of seconds, got {text!r}"
        ) from None
    if not values or not all(0 <= t <= MAX_TIME_S for t in values):  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected times 0 <= t <= {MAX_TIME_S:g} s, got {text!r}")
    return values


def size(text: str) -> tuple[int, int]:
    """An argparse type: ROWSxCOLS, both >= 1 (the crossbar checks the upper limit)."""
    try:
        rows, cols = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ROWSxCOLS such as 256x256, got {text!r}"
        ) from None
    if rows < 1 or cols < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return rows, cols


def scheduler_address(text: str) -> str:
    """An argparse type: a dask scheduler address, `[scheme://]host:port` (port 1..65535).

    The form and the host name are checked here, before anything runs; whether a scheduler
    listens there is found out when the sweep connects.
    """
    m = _ADDRESS.match(text.strip())
    if not m or not 1 <= int(m["port"]) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a scheduler address HOST:PORT such as tcp://10.0.0.5:8786 "
            f"(schemes: {', '.join(_SCHEMES)}), got {text!r}"
        )
    host = m["host"].strip("[]")
    if m["scheme"] != "inproc":
        try:
            socket.getaddrinfo(host, int(m["port"]))
        except (OSError, UnicodeError) as e:
            raise argparse.ArgumentTypeError(f"cannot resolve host {host!r} ({e})") from None
    return text.strip()


@contextlib.contextmanager
def named_options(options: dict[str, str]) -> Iterator[None]:
    """Errors about an internal key raised inside the block name the option instead:
    with {"rows": "--size"}, `rows: expected 1..65536, got 100000` becomes
    `--size: expected 1..65536, got 100000`."""
    try:
        yield
    except ArchsimError as e:
        key = e.key if isinstance(e, SpecError) else str(e).split(":", 1)[0]
        option = options.get(key.rsplit(".", 1)[-1]) if key else None
        if option is None:
            raise
        message = e.message if isinstance(e, SpecError) else str(e).split(":", 1)[1].strip()
        raise OptionError(f"{option}: {message}") from None


def end_progress() -> None:
    """End the overwritten progress line (`device_error.stderr_progress`) on a terminal."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
