"""`python -m engine steadiness CLIP...`: how steady "auto" and the mask are over time, with and without
engine.runtime.temporal's hysteresis and mask average, and what each costs in delay.

Per clip, its first `frames` frames explained in order by engine.video.sequence (batches of `batch`, evidence off):
- runs: "auto" plain and with the hysteresis (margin, hold), each without and with every mask average alpha;
  per run the temporal stability (mean |M(t) - M(t-1)| of the frame-size mask over consecutive frames, as
  `engine bench` reports it), the class switches per 100 frames, the milliseconds per frame of the engine and the
  frames explained again after a class change in a batch;
- delays: the hysteresis' lag (on how many frames before each switch the class it leaves was no longer the black
  box's top-1, mean) and the average's mean delay ((1 - alpha) / alpha frames), in frames and in ms at the clip's
  rate;
- grid: class switches per 100 frames and lag for every margin x hold, replayed from the first run's rankings
  (the black box's ranking of a frame does not depend on the class explained, so no model runs for it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from engine.api import Explainer
from engine.contract import AUTO
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from engine.runtime.temporal import Ranking, Steadiness, SteadyClass
from engine.video.reader import VideoReader
from engine.video.sequence import SequenceExplainer

Number = TypeVar("Number", int, float)


@dataclass
class Run:
    steady: bool  # hysteresis on
    alpha: float  # the mask average (1: none)
    stability: float  # mean |M(t) - M(t-1)|
    switches_per_100: float
    class_lag_frames: float | None  # the mean lag of the class switches (None: no switch)
    mask_delay_frames: float  # the average's mean delay
    ms_per_frame: float  # the engine's time per frame in this run (decoding aside)
    frames_explained_again: int


@dataclass
class GridPoint:
    margin: float
    hold: int
    switches_per_100: float
    lag_frames: float | None  # None: no switch


@dataclass
class ClipReport:
    clip: str
    width: int
    height: int
    fps: float
    frames: int
    margin: float
    hold: int
    runs: list[Run] = field(default_factory=list)
    grid: list[GridPoint] = field(default_factory=list)


def parse_numbers(text: str, kind: Callable[[str], Number]) -> list[Number]:
    """'1,0.5' -> [1.0, 0.5]; ValueError naming the bad item."""
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of numbers") from None


def switches_per_100(classes: Sequence[int]) -> float:
    changes = sum(1 for before, after in zip(classes, classes[1:]) if after != before)
    return 100.0 * changes / max(len(classes) - 1, 1)


def class_lags(shown: Sequence[int], top1: Sequence[int]) -> list[int]:
    """For each change of the class shown: on how many frames just before it the class it leaves was already not
    the top-1 (0: the change came with the top-1's)."""
    lags = []
    for index in range(1, len(shown)):
        if shown[index] == shown[index - 1]:
            continue
        left, lag = shown[index - 1], 0
        while index - 1 - lag >= 0 and top1[index - 1 - lag] != left:
            lag += 1
        lags.append(lag)
    return lags


def replay(rankings: Sequence[Ranking], margin: float, hold: int) -> list[int]:
    """The classes SteadyClass(margin, hold) shows on frames ranked as `rankings`."""
    holder = SteadyClass(margin, hold)
    return [holder.update(ranking) for ranking in rankings]


def measure_clips(
    masker: Masker,
    blackbox: BlackBox,
    name: str,
    clips: Sequence[Path],
    *,
    backend: str = "onnxruntime",
    frames: int = 300,
    batch: int = 8,
    alphas: Sequence[float] = (1.0, 0.7, 0.5, 0.3),
    margins: Sequence[float] = (0.0, 0.05, 0.1, 0.2),
    holds: Sequence[int] = (1, 2, 3, 5, 8),
    steady: tuple[float, int] = (0.1, 3),
    log: Callable[[str], None] = print,
) -> list[ClipReport]:
    with Explainer.from_masker(masker, blackbox, backend, name=name, batch_sizes=(1, batch)) as explainer:
        log(f"backend: {explainer.backend_name} ({explainer.backend_reason})")
        return [measure_clip(explainer, clip, frames, batch, alphas, margins, holds, steady, log) for clip in clips]


def measure_clip(
    explainer: Explainer,
    clip: Path,
    frames: int,
    batch: int,
    alphas: Sequence[float],
    margins: Sequence[float],
    holds: Sequence[int],
    steady: tuple[float, int],
    log: Callable[[str], None],
) -> ClipReport:
    with VideoReader(clip) as reader:
        report = ClipReport(clip.name, reader.width, reader.height, reader.fps, 0, *steady)
    rankings: list[Ranking] = []
    for steady_on in (False, True):
        for alpha in alphas:
            settings = Steadiness(steady_on, steady[0], steady[1], alpha)
            run, shown, top1, run_rankings = _run(explainer, clip, frames, batch, settings)
            lags = class_lags(shown, top1)
            run.class_lag_frames = _mean(lags)
            report.runs.append(run)
            report.frames = len(shown)
            rankings = rankings or run_rankings
            log(
                f"{clip.name}: {'steady' if steady_on else 'plain'} alpha {alpha:g}: stability {run.stability:.4f}, "
                f"{run.switches_per_100:.1f} switches / 100 frames, {run.ms_per_frame:.1f} ms / frame"
            )
    top1 = [ranking[0][0] for ranking in rankings]
    for margin in margins:
        for hold in holds:
            shown = replay(rankings, margin, hold)
            lags = class_lags(shown, top1)
            report.grid.append(GridPoint(margin, hold, switches_per_100(shown), _mean(lags)))
    return report


def _run(
    explainer: Explainer, clip: Path, frames: int, batch: int, settings: Steadiness
) -> tuple[Run, list[int], list[int], list[Ranking]]:
    """One pass: the run's figures, the classes shown, the top-1s and the rankings per frame."""
    sequence = SequenceExplainer(explainer, AUTO, settings, evidence=False)
    shown: list[int] = []
    rankings: list[Ranking] = []
    changes: list[float] = []
    previous: np.ndarray | None = None
    seconds = 0.0
    with VideoReader(clip) as reader:
        for batch_frames in reader.batches(batch, frames):
            start = time.perf_counter()
            explained = sequence.explain(batch_frames)
            seconds += time.perf_counter() - start
            for explanation in explained:
                if previous is not None:
                    changes.append(float(np.abs(explanation.mask - previous).mean()))
                previous = explanation.mask
                shown.append(explanation.target)
                rankings.append(explanation.top5)
    run = Run(
        steady=settings.steady_class,
        alpha=settings.smooth,
        stability=float(np.mean(changes)) if changes else float("nan"),
        switches_per_100=switches_per_100(shown),
        class_lag_frames=None,
        mask_delay_frames=(1.0 - settings.smooth) / settings.smooth,
        ms_per_frame=1000.0 * seconds / max(len(shown), 1),
        frames_explained_again=sequence.frames_explained_again,
    )
    return run, shown, [ranking[0][0] for ranking in rankings], rankings


def tables(reports: Sequence[ClipReport]) -> str:
    lines = []
    for report in reports:
        frame_ms = 1000.0 / report.fps
        lines.append(
            f"\n{report.clip}: {report.width}x{report.height}, {report.fps:.2f} frames/s, {report.frames} frames; "
            f"steady = margin {report.margin:g}, hold {report.hold}"
        )
        lines.append(
            f"{'auto':<7} {'alpha':>5} {'stability':>9} {'switches/100':>12} {'class lag fr (ms)':>18} "
            f"{'mask delay fr (ms)':>19} {'ms/frame':>8} {'again':>5}"
        )
        for run in report.runs:
            class_lag = (
                "-"
                if run.class_lag_frames is None
                else f"{run.class_lag_frames:.1f} ({run.class_lag_frames * frame_ms:.0f})"
            )
            mask_delay = f"{run.mask_delay_frames:.2f} ({run.mask_delay_frames * frame_ms:.0f})"
            lines.append(
                f"{'steady' if run.steady else 'plain':<7} {run.alpha:>5g} {run.stability:>9.4f} "
                f"{run.switches_per_100:>12.1f} {class_lag:>18} {mask_delay:>19} {run.ms_per_frame:>8.1f} "
                f"{run.frames_explained_again:>5}"
            )
        holds = sorted({point.hold for point in report.grid})
        lines.append("class switches / 100 frames (mean lag, frames) by margin x hold:")
        lines.append(f"{'margin':>6} " + " ".join(f"{f'hold {hold}':>13}" for hold in holds))
        for margin in sorted({point.margin for point in report.grid}):
            cells = {point.hold: point for point in report.grid if point.margin == margin}
            lines.append(f"{margin:>6g} " + " ".join(f"{_grid_cell(cells[hold]):>13}" for hold in holds))
    return "\n".join(lines)


def _mean(values: Sequence[int]) -> float | None:
    return float(np.mean(values)) if values else None


def _grid_cell(point: GridPoint) -> str:
    lag = "-" if point.lag_frames is None else f"{point.lag_frames:.1f}"
    return f"{point.switches_per_100:.1f} ({lag})"


def write_json(reports: Sequence[ClipReport], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(report) for report in reports], indent=2))
    return path
