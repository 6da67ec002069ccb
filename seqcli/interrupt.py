"""Ctrl-C that cannot be lost.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread happens to be. Raised inside a garbage
collector callback or a ``__del__`` method (JAX registers one: ``_xla_gc_callback``), it is printed as "Exception
ignored in ..." and dropped, and the command carries on as if nothing happened. The handler :func:`install` puts in
place therefore also records the interrupt; :func:`check`, called at safe points (each training batch and epoch, between
the start-up steps), raises it again until the command has handled it (:func:`clear`). A dropped interrupt is not
printed. Inside :func:`deferred` (writing the run's last state) an interrupt is only recorded, and raised at its end.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_pending = False
_deferring = 0


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    if not _deferring:
        raise KeyboardInterrupt


def _unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _pending:
            return  # recorded: check() raises it at the next safe point
        previous(unraisable)

    return hook


def install() -> Callable[[], None]:
    """Handle SIGINT as described above until the returned function is called (which restores the previous handler).

    Does nothing outside the main thread, where Python cannot install signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    clear()
    previous_handler, previous_hook = signal.signal(signal.SIGINT, _handler), sys.unraisablehook
    sys.unraisablehook = _unraisable(previous_hook)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook

    return restore


def pending() -> bool:
    """Whether Ctrl-C was pressed and not yet handled."""
    return _pending


def check() -> None:
    """A safe point: raise ``KeyboardInterrupt`` if Ctrl-C was pressed and not yet handled (its first raise may have been dropped)."""
    if _pending and not _deferring:
        raise KeyboardInterrupt


def clear() -> None:
    """The command has handled the interrupt."""
    global _pending
    _pending = False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C meanwhile is only recorded, not raised (e.g. while the run's last state is written); the next :func:`check` raises it."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
