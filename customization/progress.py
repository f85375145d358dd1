"""Progress of training runs for a caller's :class:`~core.ports.ProgressCallback` (a job's progress and heartbeat).

:func:`trainer_callback` adapts a callback to the ``transformers`` trainers (sentence-transformers' embedder and
cross-encoder trainers); the LoRA loop calls its callback itself. :func:`part_of` folds one phase of a run (the
teacher's fine-tune, then the student's) into a share of the whole. An exception raised by the callback (a cancelled
job) stops the run; the caller's staging directory is dropped as after any other failure.
"""

from __future__ import annotations

from typing import Any

from core.ports import ProgressCallback

RESOLUTION = 1000  # the integer scale part_of reports on


def trainer_callback(on_progress: ProgressCallback) -> Any:
    """A ``transformers.TrainerCallback`` calling ``on_progress(global_step, max_steps)`` after every step."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            on_progress(int(state.global_step), int(state.max_steps or state.global_step))

    return _Progress()


def part_of(on_progress: ProgressCallback | None, index: int, parts: int) -> ProgressCallback | None:
    """Report a phase as the ``index``-th (0-based) of ``parts`` equal shares of ``on_progress``'s range."""
    if on_progress is None:
        return None

    def report(done: int, total: int) -> None:
        share = min(1.0, done / total) if total > 0 else 1.0
        on_progress(round((index + share) * RESOLUTION), parts * RESOLUTION)

    return report


__all__ = ["part_of", "trainer_callback"]


def quiet(trainer: Any) -> Any:
    """``trainer`` without the printer ``transformers`` adds when its progress bar is off: it prints every log dict
    (``{'train_runtime': ...}``) to stdout, littering CLI and demo output; our own callers report the metrics."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer
