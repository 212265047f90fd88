"""The `hushdrop` command: argument parsing, prompts, exit codes; the work is in send/receive."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import traceback
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..protocol.codes import parse_code
from ..protocol.constants import MAX_RECEIVERS, MAX_TEXT_BYTES
from ..protocol.errors import (
    CodeFormatError,
    HushdropError,
    RelayError,
    StreamLostError,
    TamperedError,
    WrongCodeError,
)
from ..protocol.manifest import TextError, text_bytes
from .allocator import tune_allocator
from .completion import SHELLS
from .completion import script as completion_script
from .files import STDIN, STDIN_NAME, UsageError
from .output import Reporter
from .prompt import ask_while_running, ends_line_on_interrupt, read_code

DEFAULT_RELAY = "http://127.0.0.1:8780"
ENV_RELAY = "HUSHDROP_RELAY"
ENV_PASSWORD = "HUSHDROP_PASSWORD"
ENV_CODE = "HUSHDROP_CODE"
ENV_RESUME_WINDOW = "HUSHDROP_RESUME_WINDOW"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_WRONG_CODE = 3
EXIT_CONNECTION = 4
EXIT_TAMPERED = 5
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hushdrop", description="Private, end-to-end encrypted file transfer."
    )
    parser.add_argument("--version", action="version", version=f"hushdrop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--relay",
            metavar="URL",
            help="the relay and site, http://host:port or https://host:port (default: "
            f"${ENV_RELAY}, else {DEFAULT_RELAY}; a link brings its own)",
        )
        sub.add_argument(
            "--no-direct",
            action="store_true",
            help="keep all data on the relay: never offer or accept a direct connection to "
            "the other side (which would tell it this machine's addresses)",
        )
        sub.add_argument(
            "--json",
            action="store_true",
            help="print one JSON object per line instead of text, for scripts (never prompts)",
        )

    send = commands.add_parser("send", help="send files or directories, or a text")
    send.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="a file or folder to send (folders go with everything in them); several allowed; "
        "- alone sends standard input as one file (its size is not needed in advance)",
    )
    send.add_argument(
        "--name",
        metavar="NAME",
        help=f"the file name the receiver gets for standard input (-) (default: {STDIN_NAME})",
    )
    send.add_argument(
        "--text",
        metavar="TEXT",
        help=f"send this text (at most {MAX_TEXT_BYTES >> 20} MiB of UTF-8), alone or with the "
        "PATHs; the receiver sees it, no file is saved. '-' reads it from standard input: use "
        "that for secrets, since a TEXT on the command line is visible to other users in the "
        "process list (ps) and may stay in your shell history",
    )
    send.add_argument(
        "--password",
        action="store_true",
        help=f"also require a password (asked at a prompt, or taken from ${ENV_PASSWORD}); "
        "default: none",
    )
    send.add_argument(
        "--ttl",
        type=_seconds,
        metavar="SECONDS",
        help="how long the code waits for the receiver, in seconds (default: the relay's, "
        "3600 on a default relay; the relay keeps it within its own limits)",
    )
    send.add_argument(
        "--receivers",
        type=_receivers,
        default=1,
        metavar="N",
        help="how many receivers may use the code or link, each with its own key exchange and "
        "verification code (1 to 10; default: 1)",
    )
    common(send)

    receive = commands.add_parser("receive", help="receive with a code or link")
    receive.add_argument(
        "code",
        metavar="CODE_OR_LINK",
        nargs="?",
        help=f"the code or link; if omitted, taken from ${ENV_CODE}, a prompt or standard input "
        "(keeps it out of the process list)",
    )
    receive.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the folder to save into, created if missing (default: the current folder); - "
        "writes the one offered file to standard output as it arrives (several files are "
        "refused). Data reaches standard output before the whole file is verified: if the "
        "transfer then fails, the exit status is not 0 and what was written must be discarded. "
        "Not with --json, which has standard output (a usage error). On a terminal the file "
        "is shown made printable, its control characters replaced; redirect it for its bytes. "
        "A received text is printed on standard output and never saved",
    )
    receive.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="accept the files without asking (needed when there is no terminal, unless --json)",
    )
    receive.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing files of the same name (default: refuse the transfer)",
    )
    receive.add_argument(
        "--password",
        action="store_true",
        help=f"the sender set a password (asked at a prompt, or taken from ${ENV_PASSWORD}); "
        "a link marks this itself",
    )
    common(receive)

    serve = commands.add_parser(
        "serve", help="run the relay and the web site", add_help=False, prefix_chars="\0"
    )
    serve.add_argument("relay_args", nargs=argparse.REMAINDER)

    verify_site = commands.add_parser(
        "verify-site",
        help="check that a deployed web site is, file by file, the one built here",
        description="Fetch every file of the site at URL and compare it with a build's "
        "manifest. Exit status 0 only when all match, 1 when any differs, 4 when the site "
        "cannot be reached.",
    )
    verify_site.add_argument("url", metavar="URL", help="the site's address, https://host/path/")
    verify_site.add_argument(
        "--manifest",
        metavar="FILE",
        type=Path,
        help="the site-manifest.json to compare with (default: the one of the site "
        "`hushdrop serve` serves: this checkout's build/site, or the installed package's)",
    )
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script for commands and options",
        description="Print a completion script for the shell. Install it with, for example: "
        "hushdrop completion bash > ~/.local/share/bash-completion/completions/hushdrop "
        "(needs the bash-completion package), or add source <(hushdrop completion bash) to "
        "~/.bashrc",
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return parser


def delegated_parsers() -> dict[str, argparse.ArgumentParser]:
    """The parsers of commands that hand their arguments on: `serve`'s are the relay's."""
    from hushdrop_relay.config import build_parser as relay_parser

    return {"serve": relay_parser({}, prog="hushdrop serve")}  # its options, no environment


def _receivers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_RECEIVERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_RECEIVERS}")
    return value


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds above 0, not {text!r}")
    return value


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _prompts(args: argparse.Namespace) -> bool:
    """Whether this run may ask its user: on a terminal, and not for a script (`--json`)."""
    return _interactive() and not args.json


def _controlling_terminal() -> bool:
    """Whether this process has a terminal to ask on even though standard input is not it
    (`tar c dir | hushdrop send - --password`): getpass asks on /dev/tty."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _password_prompts(args: argparse.Namespace) -> bool:
    """Whether a password may be asked for: on the terminal, which need not be standard input
    (that may carry the data or the code), and never for a script (`--json`)."""
    return not args.json and (_interactive() or _controlling_terminal())


def _password(required: bool, confirm: bool, prompts: bool) -> str:
    """The password from the environment or a prompt; '' when not required."""
    if not required:
        return ""
    if os.environ.get(ENV_PASSWORD):
        return os.environ[ENV_PASSWORD]
    if not prompts:
        where = "without --json" if _interactive() or _controlling_terminal() else "in a terminal"
        raise HushdropError(f"A password is needed: set {ENV_PASSWORD} or run {where}.")
    with ends_line_on_interrupt():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password again: ") != password:
            raise HushdropError("The two passwords differ.")
    if not password:
        raise HushdropError("The password is empty.")
    return password


def _code_text(given: str | None, prompts: bool) -> str:
    """The code from the command line, the environment, a prompt, or one line of stdin."""
    if given:
        return given
    if os.environ.get(ENV_CODE):
        return os.environ[ENV_CODE]
    if prompts:
        try:
            return read_code("Code or link: ")
        except EOFError:
            raise CodeFormatError("No code given.") from None
    if _interactive():  # --json on a terminal: no prompt, and no silent wait for a line
        raise CodeFormatError(f"No code given: pass it or set {ENV_CODE} (--json never prompts).")
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise CodeFormatError(f"No code given: pass it, set {ENV_CODE}, or pipe it in.")
    return line


async def _ask_accept() -> bool:
    try:
        answer = await ask_while_running("Accept? [y/N] ")
    except EOFError:  # standard input closed: nobody said yes
        return False
    return answer.strip().lower() in ("y", "yes")


def _relay_url(args: argparse.Namespace, link_site: str | None = None) -> str:
    relay = args.relay or link_site or os.environ.get(ENV_RELAY) or DEFAULT_RELAY
    parts = urlsplit(relay)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        source = "--relay" if args.relay else (ENV_RELAY if not link_site else "the link")
        raise UsageError(
            f"The relay address {relay!r} (from {source}) must start with http:// or https://, "
            "for example https://relay.example.org."
        )
    return relay


def _exit_code(error: HushdropError) -> int:
    if isinstance(error, (UsageError, CodeFormatError, TextError)):
        return EXIT_USAGE
    if isinstance(error, WrongCodeError):
        return EXIT_WRONG_CODE
    if isinstance(error, TamperedError):
        return EXIT_TAMPERED
    # A stream cut by a lost connection is a connection failure too (README's exit codes).
    if isinstance(error, (RelayError, StreamLostError)) or error.kind in (
        "peer-gone",
        "stream-lost",
    ):
        return EXIT_CONNECTION
    return EXIT_ERROR


def _resume_window() -> float:
    """How long to keep reconnecting after a lost connection (PROTOCOL.md §8.1)."""
    from ..transport.pump import RESUME_WINDOW

    raw = os.environ.get(ENV_RESUME_WINDOW)
    if not raw:
        return RESUME_WINDOW
    try:
        window = float(raw)
    except ValueError:
        window = -1.0
    if window < 0:
        raise HushdropError(f"{ENV_RESUME_WINDOW} must be a number of seconds, not {raw!r}.")
    return window


def _text_to_send(given: str | None) -> str | None:
    """The text of `--text`: as given, or standard input for '-' (read whole, bounded)."""
    if given is None:
        return None
    if given != "-":
        text_bytes(given)  # too large, or bytes that are not UTF-8 on the command line
        return _not_blank(given)
    if sys.stdin is None:
        raise UsageError("--text - reads the text from standard input, but there is none.")
    if _interactive():
        print("Type the text, then Ctrl-D on a line of its own:", file=sys.stderr, flush=True)
    data = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise TextError(
            f"The text on standard input is more than {MAX_TEXT_BYTES >> 20} MiB, the most one "
            "transfer carries as text. Send it as a file instead."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(
            "The text on standard input is not UTF-8 text; send it as a file instead."
        ) from exc
    return _not_blank(text)


def _not_blank(text: str) -> str:
    """A text to send has something to read, as on the page (an empty one is a mistake)."""
    if not text.strip():
        raise UsageError("The text to send is empty (or only white space); nothing to send.")
    return text


def _run_transfer(args: argparse.Namespace, reporter: Reporter) -> None:
    if args.command == "send":
        from .send import send

        if not args.paths and args.text is None:
            raise UsageError("Name a file or folder to send, or a text with --text.")
        if STDIN in args.paths and len(args.paths) > 1:
            raise UsageError("- (standard input) is sent alone, without other paths.")
        if args.name is not None and args.paths != [STDIN]:
            raise UsageError("--name names standard input: use it with - as the only path.")
        if args.paths == [STDIN] and args.receivers > 1:
            raise UsageError(
                "Standard input (-) can be read only once: it goes to one receiver, not "
                f"{args.receivers}. Save it to a file to send it to several."
            )
        if args.text == STDIN and args.paths == [STDIN]:
            raise UsageError("Standard input can be the file (-) or the text (--text -), not both.")
        text = _text_to_send(args.text)
        password = _password(args.password, confirm=True, prompts=_password_prompts(args))
        asyncio.run(
            send(
                args.paths,
                args.name or STDIN_NAME,
                _relay_url(args),
                password,
                args.ttl,
                reporter,
                receivers=args.receivers,
                resume_window=_resume_window(),
                text=text,
                direct=not args.no_direct,
            )
        )
        return

    from .receive import receive

    to_stdout = args.output == STDIN
    if to_stdout and args.json:
        raise UsageError("-o - writes the file to standard output, where --json would go too.")
    if to_stdout and sys.stdout is None:
        raise UsageError("-o - writes the file to standard output, but it is closed.")
    if not (args.yes or args.json or _interactive()):
        raise UsageError(
            "There is no terminal to ask whether to accept the files: add --yes to accept what "
            "the sender offers (or use --json)."
        )
    prompts = _prompts(args)
    code = parse_code(_code_text(args.code, prompts))
    asking = _password_prompts(args)
    password = _password(args.password or code.password_required, False, asking) or None
    asyncio.run(
        receive(
            code,
            _relay_url(args, code.site),
            None if to_stdout else Path(args.output or "."),
            password=password,
            ask_password=lambda: _password(True, False, asking),
            ask_accept=_ask_accept if (prompts and not args.yes) else None,
            overwrite=args.overwrite,
            reporter=reporter,
            resume_window=_resume_window(),
            check_output=args.output is not None,
            direct=not args.no_direct,
        )
    )


def _verify_site(url: str, manifest: Path | None) -> int:
    from hushdrop_relay.config import DEFAULT_SITE_DIR

    from ..site_manifest import MANIFEST_NAME
    from .verify_site import SiteUnreachable, run

    try:
        matches = run(url, manifest or DEFAULT_SITE_DIR / MANIFEST_NAME)
    except SiteUnreachable as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONNECTION
    except HushdropError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    return 0 if matches else EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    tune_allocator()
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from hushdrop_relay.cli import main as serve_main

        return serve_main(args.relay_args, prog="hushdrop serve")
    if args.command == "verify-site":
        return _verify_site(args.url, args.manifest)
    if args.command == "completion":
        sys.stdout.write(completion_script(args.shell, build_parser(), delegated_parsers()))
        return 0
    # Standard output closed (`>&-`): the code, the events and a received text go to standard
    # error instead of nowhere; `-o -` has nowhere to write (a usage error).
    onto_terminal = getattr(args, "output", None) == STDIN and _isatty(sys.stdout)
    reporter = Reporter(json_mode=args.json, out=sys.stdout or sys.stderr, bar=not onto_terminal)
    try:
        _run_transfer(args, reporter)
    except HushdropError as exc:
        reporter.error(exc.kind, str(exc))
        return _exit_code(exc)
    except KeyboardInterrupt:
        reporter.error("interrupted", "Interrupted; the transfer was cancelled.")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line; the traceback only when asked for
        if os.environ.get("HUSHDROP_DEBUG"):
            traceback.print_exc()
        reporter.error(
            "error",
            f"Hushdrop stopped on an internal error ({type(exc).__name__}: {exc}). This is a "
            "bug; please report it (HUSHDROP_DEBUG=1 shows the details). The other side was "
            "told, and nothing was saved under a final name.",
        )
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
