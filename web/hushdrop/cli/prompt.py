"""Questions asked at the terminal: the code (whose words complete with TAB) and yes or no.

The code is typed at a prompt, never needed on the command line, so it stays out of the shell's
history and the process list; the prompt keeps no history of its own either. Prompts are drawn
on the terminal even when standard output is redirected (`receive -o -` writes a file there).
Line editing and completion use `readline` where Python has it, plain input elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator

from ..protocol.constants import CODE_WORDS, ROOM_DIGITS
from ..protocol.wordlist import WORDS

try:
    import readline
except ImportError:  # Windows, or a Python built without it
    readline = None  # type: ignore[assignment]


def code_completions(typed: str) -> list[str]:
    """Every way to finish the word being typed in a code `<room>-<w1>-<w2>-<w3>`, as the
    whole code so far: "123456-aban" → ["123456-abandon-"]. The room number is not completed
    (nobody lists rooms); neither is a link."""
    parts = typed.split("-")
    room, words = parts[0], parts[1:]
    if not (room.isdigit() and len(room) == ROOM_DIGITS) or not 1 <= len(words) <= CODE_WORDS:
        return []
    prefix = words[-1].lower()
    head = "-".join(parts[:-1])
    tail = "-" if len(words) < CODE_WORDS else ""
    return [f"{head}-{word}{tail}" for word in WORDS if word.startswith(prefix)]


def _complete(text: str, state: int) -> str | None:
    line = readline.get_line_buffer()[: readline.get_endidx()]
    matches = code_completions(line.split()[-1] if line.split() else "")
    return matches[state] if state < len(matches) else None


def read_code(prompt: str) -> str:
    """Ask for the code or link; TAB completes its words."""
    if readline is None:
        return ask(prompt)
    old_completer, old_delims = readline.get_completer(), readline.get_completer_delims()
    readline.set_completer(_complete)
    readline.set_completer_delims(" \t\n")  # the whole code is one word to complete
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    readline.set_auto_history(False)  # the code is not kept in the prompt's history
    try:
        return ask(prompt)
    finally:
        readline.set_completer(old_completer)
        readline.set_completer_delims(old_delims)
        readline.set_auto_history(True)


def ends_line_on_interrupt() -> contextlib.AbstractContextManager[None]:
    """For prompts drawn elsewhere (getpass): Ctrl-C leaves the cursor on a fresh line."""
    return _ends_line_on_interrupt()


def ask(prompt: str) -> str:
    """One line from the terminal, the prompt drawn on the terminal, not into standard output."""
    with _terminal_output() as on_terminal, _ends_line_on_interrupt():
        if on_terminal:
            return input(prompt)
        print(prompt, end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")


async def ask_while_running(prompt: str) -> str:
    """One line from the terminal while a transfer runs: the event loop goes on meanwhile, and
    cancelling the question (the sender closed the link while it was open) leaves nothing
    blocked behind, which a thread stuck in `input()` would (the process could not exit)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    try:
        loop.add_reader(0, lambda: ready.done() or ready.set_result(None))
    except (NotImplementedError, PermissionError, ValueError, OSError):
        return await asyncio.to_thread(ask, prompt)  # no readiness for this standard input
    out = sys.stdout if os.isatty(1) or not os.isatty(2) else sys.stderr
    print(prompt, end="", file=out, flush=True)
    try:
        await ready
    except asyncio.CancelledError:
        print(file=out, flush=True)  # what ended the question starts on a line of its own
        raise
    finally:
        loop.remove_reader(0)
    line = os.read(0, 4096)  # the terminal gives the whole line once Enter is pressed
    if not line:
        raise EOFError
    return line.decode(errors="replace").split("\n")[0]


@contextlib.contextmanager
def _ends_line_on_interrupt() -> Iterator[None]:
    """Ctrl-C at a prompt: what is said next (Interrupted…) starts on a line of its own, not
    after the prompt."""
    try:
        yield
    except KeyboardInterrupt:
        print(file=sys.stderr, flush=True)
        raise


@contextlib.contextmanager
def _terminal_output() -> Iterator[bool]:
    """Make file descriptor 1 the terminal while a prompt is shown, when standard output is
    redirected but standard error is a terminal: `input()` only edits lines (and completes)
    when both ends are terminals. Yields whether they are."""
    if os.isatty(1) or not os.isatty(2):
        yield os.isatty(0) and os.isatty(1)
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield os.isatty(0)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
