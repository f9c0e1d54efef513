"""One context-manager protocol for the engine's objects that hold resources and free them in `close()`."""

from __future__ import annotations

from typing import TypeVar

SelfClosing = TypeVar("SelfClosing", bound="Closing")


class Closing:
    """`with Thing(...) as thing:` calls `thing.close()` on the way out, also on an error."""

    def close(self) -> None:  # noqa: B027 (a hook: subclasses that hold nothing need not override it)
        """Free what the object holds (idempotent)."""

    def __enter__(self: SelfClosing) -> SelfClosing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
