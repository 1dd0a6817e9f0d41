"""A moto method replaced by ours until it is put back: what the stand-ins that can be switched off use.

`local.lambda_invoke` and `local.dynamodb_event_source` replace one moto method each while an
embedded AWS runs and put moto's own back when the last stack stops (the patches of this package's
other modules stay for the life of the process). The owner class is looked up only when the swap is
made, so importing a stand-in does not import moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class MethodSwap:
    """`owner().name` replaced by `replacement` (install) and restored (uninstall); both idempotent."""

    def __init__(self, owner: Callable[[], type], name: str, replacement: Callable[..., Any]) -> None:
        self._owner = owner
        self._name = name
        self._replacement = replacement
        self._original: Any = None
        self._lock = threading.Lock()

    def install(self) -> None:
        with self._lock:
            if self._original is None:
                owner = self._owner()
                self._original = getattr(owner, self._name)
                setattr(owner, self._name, self._replacement)

    def uninstall(self) -> None:
        with self._lock:
            if self._original is not None:
                setattr(self._owner(), self._name, self._original)
                self._original = None
