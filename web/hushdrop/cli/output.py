"""What the CLI shows: human text and a progress bar, or one JSON object per line (`--json`)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TextIO

from tqdm import tqdm

from ..protocol.manifest import Manifest
from ..protocol.text import printable, printable_text

PROGRESS_INTERVAL = 0.5  # seconds between JSON progress events
PLAIN_PROGRESS_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal


def _lifetime(seconds: int) -> str:
    """A code's lifetime as a person says it: `30 s`, `10 min`, `24 h`."""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200 or seconds % 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def human_size(size: float | None) -> str:
    if size is None:
        return "size unknown until it ends"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class Reporter:
    """One instance per command. In JSON mode every call prints exactly one line to stdout.

    Text for people goes to stderr, made printable (it may carry the peer's words or names);
    a progress bar is drawn only on a terminal, elsewhere (a log) a plain line now and then.
    """

    def __init__(
        self,
        json_mode: bool,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        bar: bool = True,
    ):
        """`bar`: False when the data itself is drawn on the terminal (`receive -o -`), which a
        bar redrawn in place would garble; progress is then a line now and then."""
        self.json_mode = json_mode
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._tty = _isatty(self._err) and bar
        self._bar: tqdm | None = None
        self._started: float | None = None
        self._last_progress = 0.0
        self._shown: int | None = None  # the progress last shown (JSON, plain lines)
        self._latest: tuple[int, int | None] | None = None  # the progress last reported
        self._trailing: asyncio.TimerHandle | None = None
        self._verb = "Transferred"
        self._route = "relay"  # what carries the data now (PROTOCOL.md §8.5)
        self._moving = False

    def _emit(self, event: str, **fields: object) -> None:
        print(json.dumps({"event": event, **fields}), file=self._out, flush=True)

    def _say(self, text: str) -> None:
        text = "\n".join(printable(line) for line in text.split("\n"))
        if self._bar is not None:
            self._bar.write(text, file=self._err)
        else:
            print(text, file=self._err, flush=True)

    def for_receiver(self, number: int) -> Reporter:
        """What to report one receiver of a link through (PROTOCOL.md §3.1)."""
        return ReceiverReporter(self, number)

    def code(self, code: str, link: str, ttl: int, password: bool, receivers: int = 1) -> None:
        if self.json_mode:
            self._emit(
                "code",
                code=code,
                link=link,
                expires_in=ttl,
                password=password,
                receivers=receivers,
            )
            return
        print(f"Code: {code}", file=self._out, flush=True)
        print(f"Link: {link}", file=self._out, flush=True)
        extra = " Give them the password separately." if password else ""
        self._say(
            f"On the other machine open the link, or run `hushdrop receive` and type the code."
            f"{extra} "
            f"Waiting for {'the receiver' if receivers == 1 else f'up to {receivers} receivers'} "
            f"(the code expires in {_lifetime(ttl)})…"
        )

    def status(self, message: str) -> None:
        if self.json_mode:
            self._emit("status", message=message)
        else:
            self._say(message)

    def verification(self, sas: str) -> None:
        if self.json_mode:
            self._emit("verification", sas=sas)
        else:
            self._say(f"Verification code: {sas}  (the other side shows the same code)")

    def offer(self, manifest: Manifest, targets: list[str]) -> None:
        if self.json_mode:
            files = [{"path": f.path, "size": f.size} for f in manifest.files]
            text = {} if manifest.text_size is None else {"text_bytes": manifest.text_size}
            self._emit(
                "offer", files=files, total=manifest.total_size, saving_to=targets[:50], **text
            )
            return
        count = len(manifest.files)
        if manifest.text_size is not None:
            where = "printed below" if _isatty(self._out) else "to standard output"
            self._say(f"Incoming: a text of {human_size(manifest.text_size)} ({where})")
            if not count and not manifest.dirs:
                return
        self._say(
            f"Incoming: {count} file{'s' if count != 1 else ''}, {human_size(manifest.total_size)}"
        )
        for entry, target in list(zip(manifest.files, targets, strict=False))[:20]:
            self._say(f"  {target}  ({human_size(entry.size)})")
        if count > 20:
            self._say(f"  … and {count - 20} more")

    def text(self, text: str) -> None:
        """A received text: in JSON mode an event; else on standard output, as its exact bytes
        when that is a file or pipe, made printable (and ended with a newline) on a terminal,
        where a hostile sender's control sequences could otherwise act."""
        if self.json_mode:
            self._emit("text", text=text, bytes=len(text.encode("utf-8")))
            return
        if _isatty(self._out):
            shown = printable_text(text)
            if self._bar is not None:  # on the same screen, most likely: around it, not into it
                self._bar.clear()
            print(shown, end="" if shown.endswith("\n") else "\n", file=self._out, flush=True)
            if self._bar is not None:
                self._bar.refresh()
            return
        binary = getattr(self._out, "buffer", None)
        if binary is None:
            self._out.write(text)
        else:
            self._out.flush()
            binary.write(text.encode("utf-8"))
        self._out.flush()

    def start_progress(self, total: int | None, verb: str = "Transferred") -> None:
        """`total` None: a stream of unknown length; the bar shows bytes and speed only."""
        self._started = self._last_progress = time.monotonic()
        self._verb = verb
        if not self.json_mode and self._tty and (total is None or total > 0):
            # Sizes and speed in the same binary units as every other line ("5.0 MiB"), not
            # tqdm's own ("5.00MB", kB/s in powers of 1000): shown in the postfix.
            shape = "{percentage:3.0f}%|{bar}| " if total else ""
            self._bar = tqdm(
                total=total,
                file=self._err,
                dynamic_ncols=True,
                mininterval=0.25,
                bar_format=shape + "{desc} [{elapsed}" + ("<{remaining}]" if total else "]"),
            )
            self._bar.set_description_str(self._sizes(0, total), refresh=False)

    def _sizes(self, done: int, total: int | None) -> str:
        elapsed = max(time.monotonic() - (self._started or time.monotonic()), 1e-6)
        of = f"/{human_size(total)}" if total is not None else ""
        return f"{human_size(done)}{of}, {human_size(done / elapsed)}/s"

    def progress(self, done: int, total: int | None) -> None:
        """Shown at most every interval; a value that came too soon after the previous one is
        shown when the interval is over, so a slow stream's last step is never left unshown."""
        self._latest = (done, total)
        if self._bar is not None:
            self._bar.set_description_str(self._sizes(done, total), refresh=False)
            self._bar.update(done - self._bar.n)  # tqdm draws at most every `mininterval`
            self._show_later(self._bar.mininterval)
            return
        if self._started is None and not self.json_mode:
            return  # a text alone has no progress to tell
        interval = PROGRESS_INTERVAL if self.json_mode else PLAIN_PROGRESS_INTERVAL
        wait = self._last_progress + interval - time.monotonic()
        if wait <= 0 or (self.json_mode and done == total):
            self._show_progress()
        else:
            self._show_later(wait)

    def _show_later(self, delay: float) -> None:
        if self._trailing is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a caller outside the transfer): the next call shows it
        self._trailing = loop.call_later(delay, self._show_trailing)

    def _show_trailing(self) -> None:
        self._trailing = None
        if self._bar is not None:
            self._bar.refresh()
        elif self._latest is not None and self._latest[0] != self._shown:
            self._show_progress()

    def _show_progress(self) -> None:
        if self._latest is None:
            return
        done, total = self._latest
        now = time.monotonic()
        elapsed = max(now - (self._started or now), 1e-6)
        self._last_progress, self._shown = now, done
        if self.json_mode:
            self._emit("progress", bytes=done, total=total, rate=round(done / elapsed))
            return
        percent = f" ({done * 100 // total}%)" if total else ""
        of = f" of {human_size(total)}" if total is not None else ""
        self._say(f"{self._verb} {human_size(done)}{of}{percent}, {human_size(done / elapsed)}/s")

    def route(self, route: str, peer: str) -> None:
        """The data now goes `route`: "direct" (a TCP connection to the `peer`) or "relay"."""
        previous, self._route = self._route, route
        self._moving = route == "direct"  # the resume on the new connection is no reconnect
        if self.json_mode:
            self._emit("route", route=route)
        elif route == "direct":
            self._say(f"Connected directly to the {peer}; the data no longer passes the relay.")
        elif previous == "direct":
            self._say(f"The direct connection to the {peer} was lost; continuing via the relay.")
        else:
            self._say(f"No direct connection to the {peer}; the data goes through the relay.")

    def reconnecting(self) -> None:
        if self.json_mode:
            self._emit("reconnecting")
        else:
            self._say("Connection lost; reconnecting… (the transfer continues where it stopped)")

    def resumed(self, done: int) -> None:
        if self._moving:
            self._moving = False
            return
        if self.json_mode:
            self._emit("resumed", bytes=done)
        else:
            self._say(f"Reconnected; continuing from {human_size(done)}.")

    def file_saved(self, path: str, sha256: str) -> None:
        if self.json_mode:
            self._emit("file", path=path, sha256=sha256)

    def done(self, files: int, size: int, text_size: int | None = None) -> None:
        """The end: `files` and their `size`; `text_size` when a text went too (else None)."""
        self._close_bar()
        # No progress started (a text alone): no time to tell, and never a negative one.
        elapsed = time.monotonic() - self._started if self._started else 0.0
        rate = size / elapsed if elapsed > 0 else 0
        if self.json_mode:
            text = {} if text_size is None else {"text_bytes": text_size}
            self._emit(
                "done",
                files=files,
                bytes=size,
                seconds=round(elapsed, 3),
                rate=round(rate),
                **text,
                route=self._route,
            )
        elif text_size is not None and not files:
            self._say(f"Done: a text of {human_size(text_size)}.")
        else:
            also = "" if text_size is None else f" and a text of {human_size(text_size)}"
            self._say(
                f"Done: {files} file{'s' if files != 1 else ''}, {human_size(size)}{also} in "
                f"{elapsed:.1f} s ({human_size(rate)}/s)."
            )

    def error(self, kind: str, message: str) -> None:
        self._close_bar()
        if self.json_mode:
            self._emit("error", kind=kind, message=message)
        else:
            print(f"Error: {printable(message)}", file=self._err, flush=True)

    def _close_bar(self) -> None:
        """The transfer ended: no progress after this (its last line would follow the end)."""
        self._latest = None
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class ReceiverReporter(Reporter):
    """One receiver of a link: its lines start with "Receiver N:", its JSON events carry
    ``"receiver": N``; progress comes as lines (several bars at once would garble a terminal)."""

    def __init__(self, parent: Reporter, number: int) -> None:
        super().__init__(parent.json_mode, parent._out, parent._err)
        self._tty = False
        self.number = number

    def _emit(self, event: str, **fields: object) -> None:
        super()._emit(event, receiver=self.number, **fields)

    def _say(self, text: str) -> None:
        super()._say(f"Receiver {self.number}: {text}")

    def error(self, kind: str, message: str) -> None:
        self._close_bar()
        if self.json_mode:
            self._emit("error", kind=kind, message=message)
        else:
            self._say(f"Error: {message}")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
