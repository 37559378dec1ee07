"""What the emulator's server and its process have in common: ``with`` starts and stops them."""

from __future__ import annotations

from typing import Any, Self


class Service:
    """Something started and stopped: a ``with`` block runs it for the block's length."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
