"""Text from outside shown as text: control characters made visible instead of acted on.

A CR/LF in an alert label would otherwise start a forged line in a log; an ESC would drive the terminal
that tails it; NUL and bidi overrides make chat show something other than what was sent. Each becomes a
visible escape (`\\r`, `\\x1b`, `\\u202e`), so the reader sees exactly what arrived.
"""

from __future__ import annotations

import re

# C0 controls but TAB (LF handled by the caller's choice), DEL, C1 controls, line/paragraph separators,
# and the bidirectional overrides and isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROLS_AND_NEWLINES = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x00": "\\0", "\x1b": "\\x1b"}


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as an escape; `keep_newlines` leaves LF alone (chat
    messages and log tails are multi-line; a log record never is)."""
    pattern = _CONTROLS if keep_newlines else _CONTROLS_AND_NEWLINES
    return pattern.sub(_visible, text)
