"""Evaluation: localisation error (two protocols), saliency metric, faithfulness (deletion, insertion, SSR, SDR) and
speed, for the masking model and baselines.

Library: `evaluate_masker(masker, blackbox, dataset)` (cheap, the masking model alone; the trainer calls it for
validation). CLI: `python -m trainer evaluate --help` (its arguments and their checks:
trainer.evaluation.evaluate_args); the table, CSV, JSON and contact sheet it writes: trainer.evaluation.report.
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from tqdm import tqdm

from engine.api import load_masker
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.encoders import create_encoder
from engine.models.masker import Masker, MaskerConfig
from trainer.cli import run_command
from trainer.data.boxes import EvalDataset, Sample, open_dataset
from trainer.data.provenance import portable, portable_command
from trainer.evaluation import faithfulness
from trainer.evaluation.baselines import MODEL_METHODS, MaskingModel, MethodContext, create_method
from trainer.evaluation.evaluate_args import PROG, EvaluationPlan, build_parser, plan_evaluation
from trainer.evaluation.report import (
    FAITHFULNESS_NOTE,
    NORMALISATION_NOTE,
    PROTOCOLS,
    RowWriter,
    contact_sheet,
    print_report,
    read_rows,
    write_summary,
)
from trainer.evaluation.scoring import (
    blackbox_answers,
    faithfulness_columns,
    image_batch,
    iter_batches,
    run_method,
    score,
    summarise,
)
from trainer.evidence import blur


def evaluate_masker(
    masker: nn.Module,
    blackbox: BlackBox,
    dataset: EvalDataset | str,
    limit: int | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> dict:
    """The masking model's localisation errors (%, paper and mean protocols), saliency metric and mean mask.

    `dataset`: an EvalDataset or a folder with boxes.csv; `limit`: the first N images. Returns the summary of
    `trainer.evaluation.scoring.summarise` plus `errors` (images that could not be used). The masker's train/eval mode
    is restored afterwards.
    """
    device = torch.device(device)
    if not isinstance(dataset, EvalDataset):
        dataset = open_dataset(dataset)
    indices = list(range(len(dataset) if limit is None else min(limit, len(dataset))))
    method = MaskingModel(masker)
    was_training = masker.training
    masker.eval()
    rows: list[dict] = []
    errors: list[str] = []
    try:
        for samples in iter_batches(dataset, indices, batch_size, errors):
            images = image_batch(samples, blackbox.input_size, device)
            classes = torch.tensor([s.label for s in samples], device=device)
            answers = blackbox_answers(blackbox, images, classes)
            output = run_method(method, samples, images, classes)
            rows += score(method, output, samples, blackbox, answers, device)
    finally:
        masker.train(was_training)
    return {**summarise(rows), "errors": errors}


# --- the command line ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: run(plan_evaluation(build_parser().parse_args(argv)), argv))


def run(plan: EvaluationPlan, argv: list[str]) -> int:
    args, names, device, dataset = plan.args, plan.names, plan.device, plan.dataset
    blackbox, masker, masker_label = _models(plan)
    context = MethodContext(blackbox, device, masker, masker_label, args.iterations, args.rise_masks, args.gate)
    methods = [create_method(name, context) for name in names]

    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "per_image.csv"
    previous = read_rows(rows_path) if args.resume else []
    done = {(row["file"], row["method"]) for row in previous}
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    todo = [i for i in range(count) if any((dataset.records[i].file, n) not in done for n in names)]

    errors: list[str] = []
    sheet: list[dict] = []
    interrupted = False
    writer = RowWriter(rows_path, resume=args.resume)
    progress = tqdm(total=len(todo), unit="image", desc="evaluate")
    try:
        for samples in iter_batches(dataset, todo, args.batch_size, errors):
            warmup = progress.n == 0
            _evaluate_batch(
                samples, methods, blackbox, device, done, writer, sheet, args.sheet, warmup, args.faithfulness_steps
            )
            progress.update(len(samples))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        writer.close()

    rows = read_rows(rows_path)
    lines = _summary_lines(rows, methods)
    meta = _meta(plan, argv, blackbox, methods, errors, rows, count, interrupted)
    print_report(lines, meta, errors, plan.data)
    csv_path, json_path = write_summary(args.out, lines, meta)
    written = [rows_path, csv_path, json_path]
    if sheet:
        written.append(contact_sheet(sheet, [m.label for m in methods], args.out / "contact_sheet.png"))
    print("written: " + ", ".join(str(p) for p in written))
    return 130 if interrupted else 0


def _evaluate_batch(
    samples: list[Sample],
    methods: list,
    blackbox: BlackBox,
    device: torch.device,
    done: set[tuple[str, str]],
    writer: RowWriter,
    sheet: list[dict],
    sheet_size: int,
    warmup: bool,
    steps: int,
) -> None:
    images = image_batch(samples, blackbox.input_size, device)
    classes = torch.tensor([s.label for s in samples], device=device)
    answers = blackbox_answers(blackbox, images, classes)
    probability = torch.tensor(answers[1], device=device)
    ref = faithfulness.reference(blackbox, images, classes, blur(images), probability) if steps else None
    outputs = []
    for method in methods:
        output = run_method(method, samples, images, classes)
        faithful = faithfulness_columns(blackbox, images, classes, output, ref, steps) if ref is not None else None
        rows = score(method, output, samples, blackbox, answers, device, warmup, faithful)
        writer.write([row for row in rows if (row["file"], row["method"]) not in done])
        outputs.append(output)
    for index, sample in enumerate(samples[: max(sheet_size - len(sheet), 0)]):
        sheet.append(
            {
                "image": sample.image,
                "gt": sample.boxes,
                "methods": [(o.maps[index], o.paper_boxes[index], o.mean_boxes[index]) for o in outputs],
            }
        )


def _models(plan: EvaluationPlan) -> tuple[BlackBox, nn.Module | None, str]:
    """(black box, masker or None, the model row's label) for a checked plan."""
    args, device = plan.args, plan.device
    if not set(MODEL_METHODS) & set(plan.names):
        return create_blackbox(args.blackbox).to(device), None, ""
    if plan.model is None:  # --untrained
        blackbox = create_blackbox(args.blackbox)
        torch.manual_seed(0)
        masker = Masker(MaskerConfig(), create_encoder("efficientnet_lite0", blackbox))
        return blackbox.to(device), masker.to(device).eval(), "Masking model (UNTRAINED, random decoder)"
    model = load_masker(plan.model, device)
    return model.blackbox, model.masker, f"Masking model ({plan.model.name})"


def _summary_lines(rows: list[dict], methods: list) -> list[dict]:
    lines = []
    for method in methods:
        method_rows = [row for row in rows if row["method"] == method.name]
        if method_rows:
            normalised = bool(getattr(method, "normalised", False))
            lines.append(
                {"method": method.name, "label": method.label, **summarise(method_rows), "normalised": normalised}
            )
    return lines


def _meta(
    plan: EvaluationPlan,
    argv: list[str],
    blackbox: BlackBox,
    methods: list,
    errors: list[str],
    rows: list[dict],
    count: int,
    interrupted: bool,
) -> dict:
    """How the table was computed: data (by name, content hash and count), black box, device, protocols, problems."""
    args, names, device = plan.args, plan.names, plan.device
    normalised = [m.label for m in methods if getattr(m, "normalised", False)]
    first = [row for row in rows if row["method"] == names[0]]
    return {
        "command": portable_command(PROG, argv),
        "data": plan.dataset.identity(count),
        "annotations": "ImageNet bounding-box XML files" if args.annotations else None,
        "images": len(first),
        "blackbox": getattr(blackbox, "name", type(blackbox).__name__),
        "blackbox_top1": summarise(first)["blackbox_top1"] if first else None,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "batch_size": args.batch_size,
        "iterations": args.iterations if "iterative" in names else None,
        "rise_masks": args.rise_masks if "rise" in names else None,
        "faithfulness": FAITHFULNESS_NOTE.format(steps=args.faithfulness_steps) if args.faithfulness_steps else None,
        "normalisation": NORMALISATION_NOTE.format(", ".join(normalised)) if normalised else None,
        "protocols": PROTOCOLS,
        "ms_per_image": "time of the method's own computation (maps or boxes) per image, batch time / batch size, "
        "on the device above, this run; each method's first batch (start-up costs) left out",
        "errors": portable(errors),
        "interrupted": interrupted,
    }
