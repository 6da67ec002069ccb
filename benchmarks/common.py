"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time


def steady(times: list[float]) -> float:
    """Steady-state epoch time: the median of the epochs after the first (which includes tracing)."""
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


class EpochClock:
    """Epoch durations: a seqcli progress hook (``fit(prepared, clock)``), or ``begin``/``end`` from a Keras callback."""

    batch_updates = False  # like model.fit(verbose=0): no per-batch logs

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def begin(self) -> None:
        self._start = time.perf_counter()

    def end(self) -> None:
        self.times.append(time.perf_counter() - self._start)

    def keras_callback(self) -> object:
        import keras

        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: self.begin(), on_epoch_end=lambda *_: self.end())

    # seqcli's train.Progress
    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        self.begin()

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        self.end()  # includes seqcli's epoch commit (checkpoint, history, run.json)
        self.begin()

    def on_train_end(self) -> None:
        pass
