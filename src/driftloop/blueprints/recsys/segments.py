"""User segments by history length in the training window.

``anonymous``: no known history (an unknown user, or a known one with none);
``semi``: a few interactions (1 .. ``warm_min`` - 1); ``warm``: ``warm_min`` or more.
"""

from __future__ import annotations

ANONYMOUS, SEMI, WARM = "anonymous", "semi", "warm"
SEGMENTS = (ANONYMOUS, SEMI, WARM)
DEFAULT_WARM_MIN = 10


def segment_of(history_length: int, warm_min: int = DEFAULT_WARM_MIN) -> str:
    if warm_min < 2:
        raise ValueError(f"warm_min must be at least 2 (semi is 1 .. warm_min - 1), got {warm_min}")
    if history_length <= 0:
        return ANONYMOUS
    return SEMI if history_length < warm_min else WARM
