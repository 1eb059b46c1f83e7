"""Never a loop: forbid the coarse token that would repeat a 1 s stretch already made.

Before each frame, the last `window - 1` coarse (level-0) tokens are looked up among every earlier
stretch with the same tokens; the tokens that followed those stretches are forbidden now, so no
`window` consecutive coarse tokens ever occur twice. Stretches of silence are exempt (silence may
repeat). Stretches are keyed by a 64-bit hash of their tokens: a collision can only forbid a token
needlessly, never let a repeat through. Memory holds the last `capacity` frames' keys (2 h by
default, about 50 MB); older material is forgotten.
"""

from __future__ import annotations

from collections import deque


class NoRepeat:
    def __init__(self, window: int, silence: set[int] | frozenset[int], capacity: int = 2 * 3600 * 75):
        self.window = window
        self.silence = frozenset(silence)
        self.capacity = capacity
        self.recent: deque[int] = deque(maxlen=window - 1)
        self.loud_in_recent = 0          # non-silent tokens among `recent`
        self.followers: dict[int, set[int] | int] = {}
        self.keys: deque[int] = deque()
        self.interventions = 0           # frames where a token had to be forbidden

    def _key(self) -> int | None:
        if len(self.recent) < self.window - 1 or self.loud_in_recent == 0:
            return None
        return hash(tuple(self.recent))

    def forbidden(self) -> set[int]:
        """Tokens that must not come next."""
        key = self._key()
        if key is None:
            return set()
        seen = self.followers.get(key)
        if seen is None:
            return set()
        return {seen} if isinstance(seen, int) else set(seen)

    def push(self, token: int) -> None:
        """Record the token chosen for this frame."""
        key = self._key()
        if key is not None:
            seen = self.followers.get(key)
            if seen is None:
                self.followers[key] = token
            elif isinstance(seen, int):
                if seen != token:
                    self.followers[key] = {seen, token}
            else:
                seen.add(token)
            self.keys.append(key)
            if len(self.keys) > self.capacity:
                self.followers.pop(self.keys.popleft(), None)
        if len(self.recent) == self.recent.maxlen and self.recent[0] not in self.silence:
            self.loud_in_recent -= 1
        self.recent.append(token)
        if token not in self.silence:
            self.loud_in_recent += 1
