"""What every driver of the page shares: the crypto backend and where the relay and site are."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.backend import CryptoBackend


@dataclass(frozen=True)
class Capabilities:
    """What the page's browser can do that the engine worker cannot see from where it runs."""

    save_as: bool = False  # showSaveFilePicker (File System Access)
    direct: bool = False  # RTCPeerConnection, on the page's main thread

    @classmethod
    def of(cls, page: object) -> Capabilities:
        """From the page's start command: `{"saveAs": bool, "direct": bool}`."""
        page = page if isinstance(page, dict) else {}
        return cls(save_as=page.get("saveAs") is True, direct=page.get("direct") is True)


@dataclass(frozen=True)
class PageContext:
    backend: CryptoBackend
    relay: str  # relay base URL (config.json, else the page's origin)
    site: str  # the page's base URL, put in front of share links
    origin: str  # the page's origin, to recognise links made by this site
    # Seconds to keep reconnecting after a lost connection (config.json `resumeWindow`). Shorter
    # than the CLI's: a closed tab cannot always say goodbye, and looks like a lost connection.
    resume_window: float = 120.0
    # RTCPeerConnection iceServers (config.json `iceServers`): STUN/TURN, none by default.
    ice_servers: tuple = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
