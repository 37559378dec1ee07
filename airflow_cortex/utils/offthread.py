"""One call on a thread of its own, for overlapping two waits.

A task's calls to Airflow (XCom, its task state) and a Snowflake statement each spend their
time waiting on a socket: made at once, they cost the task the longer of the two, not the sum.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


class OffThread(Generic[T]):
    """``call()`` running on a thread of its own from now; :meth:`result` waits for it and returns
    what it returned or raises what it raised."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                self._outcome.append((True, call()))
            except BaseException as error:  # handed to the caller of result()
                self._outcome.append((False, error))

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the call to end, whatever it did."""
        self._thread.join()

    def result(self) -> T:
        self._thread.join()
        succeeded, value = self._outcome[0]
        if not succeeded:
            raise value
        return cast("T", value)
