"""The page's relay connection: the shared `BrowserRelayConnection`, with two settings adjusted.

Why they are adjusted here (until `hushdrop.transport.browser` changes its defaults):

* `DRAIN_POLL`: Pyodide runs `asyncio.sleep` delays of 2 ms or less as immediate MessageChannel
  tasks, not timers, so a 2 ms drain poll is a busy loop that starves the browser's own WebSocket
  writes (measured: the sender stalled at about 1 MiB/s). 10 ms is a real timer.
* `HIGH_WATER`: the receiver's credit (PROTOCOL.md §7) already bounds what the sender may have in
  flight to INITIAL_CREDIT plus a credit batch, so the send buffer is bounded without waiting for
  it to drain. With the threshold above that bound the sender is driven by the receiver's CREDIT
  messages (events) instead of timers, which browsers throttle in background tabs — and a sender's
  tab usually is in the background while the link is being shared.
"""

from __future__ import annotations

from ..protocol.constants import CREDIT_BATCH, DATA_FRAME_SIZE, INITIAL_CREDIT
from ..transport import browser
from ..transport.browser import BrowserRelayConnection

browser.DRAIN_POLL = max(browser.DRAIN_POLL, 0.010)
browser.HIGH_WATER = max(browser.HIGH_WATER, INITIAL_CREDIT + CREDIT_BATCH + 2 * DATA_FRAME_SIZE)

__all__ = ["BrowserRelayConnection"]
