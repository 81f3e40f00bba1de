"""What both CLIs share: error-to-exit-code mapping, logging to stderr, and progress bars."""

import logging
import os
import select
import stat
import sys
from contextlib import contextmanager
from typing import Annotated, Any, Callable, Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from codo_aug.errors import InputError, RunError
from codo_aug.version import __version__

try:  # typer 0.2x carries its own copy of click, whose exceptions these are
    from typer._click import exceptions as click_errors
except ImportError:  # older typer runs on click itself
    try:
        from click import exceptions as click_errors
    except ImportError:  # a typer that moved its copy: its own (boxed) error messages
        click_errors = None

stderr = Console(stderr=True, soft_wrap=True)

EXIT_RUNTIME = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def new_app(help_text: str) -> typer.Typer:
    """A typer app with our conventions: subcommands, no completion install, no pretty tracebacks."""
    return typer.Typer(help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


def run_app(app: typer.Typer, prog: str) -> None:
    """Run `app` as the console script `prog`: a command-line mistake (unknown option, bad value, missing
    argument) is one line 'PROG CMD: error: ...' with exit 2, as codo's own input errors, not typer's box."""
    if click_errors is None:
        app(prog_name=prog)  # standalone mode: it exits by itself
        return
    try:
        code = app(prog_name=prog, standalone_mode=False)
        sys.stdout.flush()  # here, so that a reader gone ('| head -1') meets the check below, not shutdown
    except BrokenPipeError:
        if not reader_gone():
            raise
        sys.exit(1)
    except click_errors.ClickException as exc:
        if not isinstance(exc, getattr(click_errors, "NoArgsIsHelpError", ())):  # it printed the help already
            where = _command_path(app, prog, getattr(exc, "ctx", None))
            message = " ".join(exc.format_message().split()).rstrip(".")
            print(f"{where}: error: {message} (try '{where} --help')", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:  # typer 0.2x's own class, click's before
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _command_path(app: typer.Typer, prog: str, ctx: Any) -> str:
    """'PROG CMD' for an error's context; click raises some parse errors (an option missing its value)
    without one, so the subcommand is then the first command name among the arguments."""
    if ctx is not None:
        return ctx.command_path
    commands = getattr(typer.main.get_command(app), "commands", {})
    name = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    return f"{prog} {name}" if name in commands else prog


def _widowed(stream: Any) -> bool:
    """Whether `stream` is a pipe whose reading end is closed (poll reports POLLERR on such a pipe's writing
    end); False where that cannot be told (not a pipe, no poll)."""
    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR is reported whatever events are asked for
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def reader_gone() -> bool:
    """Whether stdout or stderr lost its reader ('codo-aug stats DIR --json | head -1'): then each such
    stream is pointed at os.devnull, so the output still buffered cannot fail again at shutdown, as
    Python's docs advise for SIGPIPE; the caller exits 1 quietly, as a --help into a closed pipe does."""
    gone = [stream for stream in (sys.stdout, sys.stderr) if _widowed(stream)]
    for stream in gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    return bool(gone)


def _print_version(ctx: typer.Context, value: bool) -> None:
    """--version: 'PROG VERSION' on stdout, then exit before any command runs."""
    if value:
        print(f"{ctx.find_root().info_name} {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")]


def given(ctx: typer.Context, **values: Any) -> dict[str, Any]:
    """The `values` whose options were given on the command line, not left at their defaults: defaults
    shown in --help must not override --config or --set. A parameter named with a trailing _ (`compile_`:
    a Python builtin's name) gives its setting without it."""
    return {k.removesuffix("_"): v for k, v in values.items()
            if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"}


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr: through rich on a terminal (so bars stay intact), as plain lines otherwise."""
    if stderr.is_terminal:
        handler: logging.Handler = RichHandler(console=stderr, show_time=False, show_path=False)
        fmt = "%(message)s"
    else:
        handler, fmt = logging.StreamHandler(sys.stderr), "%(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=fmt, handlers=[handler],
                        force=True)


def fail(prog: str, message: str, code: int) -> None:
    """Print one line 'PROG: error: MESSAGE' on stderr (line breaks inside MESSAGE become spaces) and exit
    with `code`."""
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def exit_codes(prog: str, resume: str = "") -> Iterator[None]:
    """Map codo's errors to one stderr line and an exit code: 2 bad input, 1 runtime failure, 130 Ctrl-C
    (with `resume`, what running the command again resumes: 'interrupted; run the same command again to
    resume (RESUME)'), and 1 quietly when the reader of stdout or stderr is gone."""
    try:
        yield
    except InputError as exc:
        fail(prog, str(exc), EXIT_INPUT)
    except RunError as exc:
        fail(prog, str(exc), EXIT_RUNTIME)
    except KeyboardInterrupt:
        fail(prog, f"interrupted; run the same command again to resume ({resume})" if resume else
             "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError as exc:
        if reader_gone():
            raise typer.Exit(EXIT_RUNTIME) from None
        fail(prog, str(exc), EXIT_RUNTIME)
    except OSError as exc:
        fail(prog, f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc), EXIT_RUNTIME)
    except Exception as exc:  # noqa: BLE001 - the edge of the program: one line, not a traceback
        if os.environ.get("CODO_DEBUG"):
            raise
        fail(prog, f"unexpected {type(exc).__name__}: {exc} (set CODO_DEBUG=1 for the traceback)",
             EXIT_RUNTIME)


@contextmanager
def progress(description: str,
             disable: bool = False) -> Iterator[tuple[Callable[[int], None], Callable[..., None]]]:
    """A progress bar on stderr; yields (start(total), advance(note=None)), `note` shown after the
    description (e.g. the latest loss). The bar appears only once `start` is called, so input errors
    found while setting up print alone."""
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, disable=disable,
    )
    task = bar.add_task(description, total=None)

    def start(total: int) -> None:
        bar.update(task, total=total)
        bar.start()

    def advance(note: str | None = None) -> None:
        bar.update(task, advance=1, **({"description": f"{description} {note}"} if note else {}))

    try:
        yield start, advance
    finally:
        if bar.live.is_started:
            bar.stop()
