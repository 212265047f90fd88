"""Every wire constant of protocol version 3 (docs/PROTOCOL.md): labels, sizes, message types."""

from __future__ import annotations

PROTOCOL_VERSION = 4
# The most receivers one link admits (PROTOCOL.md §3.1).
MAX_RECEIVERS = 10

# §2 codes
ROOM_DIGITS = 6
CODE_WORDS = 3
LINK_SECRET_SIZE = 16
LINK_PASSWORD_SUFFIX = ".pw"
FORM_WORDS = 0x01
FORM_LINK = 0x02
FORM_LABELS = {FORM_WORDS: b"words", FORM_LINK: b"link"}

# §3 rendezvous
WS_PATH = "/v1/ws"

# §4 peer messages
MSG_HELLO = 0x01
MSG_PAKE_A = 0x02
MSG_PAKE_B = 0x03
MSG_CONFIRM = 0x04
MSG_RESUME = 0x05
MSG_ABORT = 0x0F
MSG_SEALED = 0x10
MSG_SEALED_PART = 0x11  # a leading piece of a SEALED message too large for one frame
MSG_DATA = 0x20

FLAG_PASSWORD = 0x01
FLAG_WORDS = 0x02  # the sender accepts the typed code (it showed it), not only the link
KNOWN_FLAGS = FLAG_PASSWORD | FLAG_WORDS
SID_PART_SIZE = 16
POINT_SIZE = 32
COMMITMENT_LABEL = b"hushdrop/2 share commitment"
COMMITMENT_SIZE = 32

ABORT_CONFIRMATION_FAILED = 0x01
ABORT_VERSION = 0x02
ABORT_MALFORMED = 0x03
ABORT_CANCELLED = 0x04
ABORT_FORM_REFUSED = 0x05  # the receiver has the typed code; the sender accepts only the link

SIDE_SENDER = 0x01
SIDE_RECEIVER = 0x02

# §5 key schedule
CI_LABEL = b"hushdrop/1"
KEY_SCHEDULE_SALT = b"hushdrop/1 key schedule"
LABEL_CONTROL_S2R = b"hushdrop/1 control sender->receiver"
LABEL_CONTROL_R2S = b"hushdrop/1 control receiver->sender"
LABEL_DATA = b"hushdrop/1 data"
LABEL_SAS = b"hushdrop/1 verification code"
LABEL_RESUME = b"hushdrop/1 resume"
LABEL_DIRECT = b"hushdrop/3 direct"  # authenticates direct TCP connections (§8.5)
SAS_SIZE = 4

# §6 sealed control messages
SEALED_PAD = 256
KIND_MANIFEST = 0x01
KIND_ACCEPT = 0x02
KIND_DECLINE = 0x03
KIND_CREDIT = 0x04
KIND_COMPLETE = 0x05
KIND_CANCEL = 0x06
KIND_RESUME_AT = 0x07
KIND_RESUMED = 0x08
KIND_SIGNAL = 0x09
KIND_SWITCH = 0x0A
KIND_KEEPALIVE = 0x0B  # S→R, empty: the sender is waiting for its stream's input (§7.2)

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_ENTRIES = 100_000
MAX_PATH_BYTES = 4096
MAX_TEXT_BYTES = 1024 * 1024  # §6.1 a text sent instead of (or with) files, UTF-8 bytes

# §7 data stream
FILE_CONTEXT_PREFIX = b"hushdrop/1 file"
FILE_DIGEST_SIZE = 32
DATA_FRAME_SIZE = 1024 * 1024
SEALED_PART_SIZE = DATA_FRAME_SIZE  # ciphertext bytes per SEALED_PART / last SEALED piece
INITIAL_CREDIT = 16 * 1024 * 1024

# §7.2 streams (a file of unknown size): its plaintext is segments, then an end record
SEGMENT_HEADER_SIZE = 4  # u32 length of a segment; 0 starts the end record
STREAM_END_SIZE = SEGMENT_HEADER_SIZE + 8  # u32 0 || u64 total content length
STREAM_FLUSH = 0xFFFF_FFFF  # a u32 "length" that marks a flush: zeros to the chunk's end (§7.2)
STREAM_FLUSH_DELAY = 0.25  # at most this long what a stream read waits to be sent (§7.2)
KEEPALIVE_INTERVAL = 2.0  # seconds between KEEPALIVE messages while a stream's input waits
CREDIT_BATCH = 4 * 1024 * 1024

# §8.4 direct connections
MAX_SIGNAL_BYTES = 64 * 1024
SIGNAL_UNSUPPORTED = b'{"type": "unsupported"}'  # the answer of a peer without WebRTC

# §8.5 direct TCP connections
SIGNAL_TCP = "tcp"  # the "type" of a SIGNAL carrying TCP connection hints
MAX_HINTS = 16
DIRECT_MAGIC = b"hushdrop direct\n"
DIRECT_NONCE_SIZE = 16
DIRECT_TAG_SIZE = 32
DIRECT_GO = 0x01
MAX_DIRECT_MESSAGE = DATA_FRAME_SIZE + 4096  # a peer message on the connection, as on the relay

# §8 reconnecting and resuming
LABEL_RESUME_ID = b"hushdrop/1 resume id"
RESUME_ID_SIZE = 16
RESUME_NONCE_SIZE = 16
RESUME_RECORD_LABEL = b"hushdrop/1 resume record"
