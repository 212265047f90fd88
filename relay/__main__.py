"""``python -m hushdrop_relay``: run the relay with command-line flags."""

from hushdrop_relay.cli import main

raise SystemExit(main(prog="python -m hushdrop_relay"))
