"""Write an evaluation to disk: ``metrics.json``, ``per_frame.json``, ``report.md`` and plots.

``write_report(result, out_dir)`` is the one entry point (``perovss eval`` and
``perovss demo`` use it). Layout of ``out_dir``::

    metrics.json            meta, overall and per-concept metrics, speed, teaching
    per_frame.json          one record per concept and frame (IoU, boundary IoU, J, F, presence, outcome)
    report.md               the same in Markdown, with the pictures
    plots/concepts.png      per-concept bars
    plots/iou_over_time.png IoU per frame and concept
    contact_sheet.png       overlays of the worst frames, worst first
    labelled_sheet.png      every segment's label drawn on it, worst category IoU first (category ground truth only)
    predictions/            instance masks per frame (written by the runner)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from perovss_ros.eval.metrics import OUTCOMES
from perovss_ros.eval.plots import concept_bars, contact_sheet, iou_over_time
from perovss_ros.eval.runner import EvalResult, records_as_dicts

MAX_SERIES = 10
_COLUMNS = (
    ("miou", "mIoU"), ("boundary_iou", "boundary IoU"), ("jf", "J&F"), ("presence_precision", "presence P"),
    ("presence_recall", "presence R"), ("iou_precision", "IoU P"), ("iou_recall", "IoU R"),
    ("frames_present", "frames present"), ("frames", "frames"),
)


def _json_safe(value):
    """NaN/inf become None so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def _table(rows: dict[str, dict]) -> list[str]:
    lines = ["| | " + " | ".join(label for _, label in _COLUMNS) + " |",
             "|---|" + "---:|" * len(_COLUMNS)]
    for name, summary in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(summary.get(key)) for key, _ in _COLUMNS) + " |")
    return lines


def _count_and_share(counts: dict, fractions: dict, key: str) -> str:
    """``n (xx %)`` of one outcome, or ``n`` when its share is undefined."""
    n = counts.get(key)
    share = fractions.get(key)
    if n is None:
        return "–"
    if share is None or (isinstance(share, float) and not math.isfinite(share)):
        return str(n)
    return f"{n} ({100.0 * share:.0f} %)"


_OUTCOME_KEYS = (*OUTCOMES, "lookalike_as_mine")


def _outcome_table(rows: dict[str, dict]) -> list[str]:
    lines = ["| | " + " | ".join(k.replace("_", " ") for k in _OUTCOME_KEYS) + " |",
             "|---|" + "---:|" * len(_OUTCOME_KEYS)]
    for name, summary in rows.items():
        counts, fractions = summary.get("outcomes") or {}, summary.get("outcome_fractions") or {}
        lines.append(f"| {name} | " + " | ".join(_count_and_share(counts, fractions, k) for k in _OUTCOME_KEYS)
                     + " |")
    return lines


def outcome_line(counts: dict) -> str:
    """One line of outcome counts, e.g. ``right 30  spill 2  wrong object 1 ...`` (from ``summary["outcomes"]``)."""
    text = "  ".join(f"{k.replace('_', ' ')} {counts.get(k, 0)}" for k in OUTCOMES)
    if counts.get("lookalike_scored"):
        text += f"  look-alike as mine {counts.get('lookalike_as_mine', 0)}"
    return text


def _share_text(n: int | None, m: int | None) -> str:
    """``m / n (xx %)``, or ``–`` when nothing was counted."""
    if not n:
        return "–"
    return f"{m} / {n} ({100.0 * m / n:.1f} %)"


def open_vocab_line(ov: dict) -> str:
    """One line of the open-vocabulary numbers (``EvalResult.open_vocab``) for a terminal."""
    look, right = ov.get("lookalike_fp", {}), ov.get("right_category", {})
    text = (f"IoU^per {_fmt(ov.get('iou_per_mean'))}  generic mIoU {_fmt(ov.get('generic', {}).get('miou'))}  "
            f"right category {_share_text(right.get('object_frames'), right.get('right'))}  "
            f"personal on same-category look-alikes {_share_text(look.get('object_frames'), look.get('as_personal'))}")
    if not ov.get("labelled_segments"):
        text += "  (no segment carried a category: labelling off)"
    return text


def open_vocab_lines(ov: dict) -> list[str]:
    """The report's open-vocabulary section: IoU^per, generic mIoU and per-class tables, look-alike false
    positives, right categories (``ov`` is ``EvalResult.open_vocab``)."""
    lines = ["", "## Open vocabulary", ""]
    if not ov.get("labelled_segments"):
        lines += ["No predicted segment carried a category: labelling was off (or the pipeline does not label "
                  "yet), so the generic mIoU and the right-category share below measure nothing.", ""]
    generic, lookalike, right = ov.get("generic", {}), ov.get("lookalike_fp", {}), ov.get("right_category", {})
    lines += [f"- frames: {ov.get('frames', 0)}; segments: {ov.get('segments', 0)}, of which labelled "
              f"with a category: {ov.get('labelled_segments', 0)}",
              f"- mean IoU^per over personal concepts: {_fmt(ov.get('iou_per_mean'))}",
              f"- generic mIoU over {len(generic.get('vocabulary', []))} vocabulary class(es): "
              f"{_fmt(generic.get('miou'))}",
              f"- personal label on a same-category look-alike: "
              f"{_share_text(lookalike.get('object_frames'), lookalike.get('as_personal'))} object-frames",
              f"- objects with the right category (IoU ≥ 0.5): "
              f"{_share_text(right.get('object_frames'), right.get('right'))} object-frames", ""]
    comparison = ov.get("comparison")
    if comparison:
        verdict = "within" if comparison.get("within_tolerance") else "not within"
        lines += [f"Generic mIoU with personal concepts taught {_fmt(comparison.get('miou_with'))}, without "
                  f"{_fmt(comparison.get('miou_without'))} (`{comparison.get('without')}`): "
                  f"{_fmt(comparison.get('delta_points'))} points, {verdict} {comparison.get('tolerance_points')}.",
                  ""]
        outside = comparison.get("outside_personal") or {}
        if outside:
            lines += [f"Outside the personal objects' pixels (what teaching must leave alone): taught "
                      f"{_fmt(outside.get('miou_with'))}, without {_fmt(outside.get('miou_without'))}: "
                      f"{_fmt(outside.get('delta_points'))} points.", ""]
    if ov.get("personal"):
        lines += ["| personal concept | IoU^per | per-frame mIoU | frames present | frames | on a same-category "
                  "look-alike |", "|---|---:|---:|---:|---:|---:|"]
        per_look = lookalike.get("per_concept", {})
        for name, p in ov["personal"].items():
            look = per_look.get(name, {})
            lines.append(f"| {name} | {_fmt(p.get('iou_per'))} | {_fmt(p.get('miou_frames'))} | "
                         f"{p.get('frames_present')} | {p.get('frames')} | "
                         f"{_share_text(look.get('object_frames'), look.get('as_personal'))} |")
        lines.append("")
    if generic.get("per_class"):
        right_per = right.get("per_class", {})
        lines += ["| class | IoU | ground-truth pixels | predicted pixels | right category |",
                  "|---|---:|---:|---:|---:|"]
        for word, c in generic["per_class"].items():
            r = right_per.get(word, {})
            lines.append(f"| {word} | {_fmt(c.get('iou'))} | {c.get('gt_pixels')} | {c.get('pred_pixels')} | "
                         f"{_share_text(r.get('object_frames'), r.get('right'))} |")
    if ov.get("off_vocabulary"):
        lines += ["", "Ground-truth classes outside the vocabulary (their pixels should stay unlabelled):", "",
                  "| class | ground-truth pixels | labelled with some category |", "|---|---:|---:|"]
        for word, c in ov["off_vocabulary"].items():
            labelled = _share_text(c.get("gt_pixels"), c.get("labelled_pixels"))
            lines.append(f"| {word} | {c.get('gt_pixels')} | {labelled} |")
    return lines


def markdown(result: EvalResult, pictures: dict[str, str] | None = None) -> str:
    """The Markdown report of ``result``; ``pictures`` maps picture names to paths relative to the report."""
    meta, speed = result.meta, result.speed
    lines = ["# perovss evaluation", ""]
    for key in ("source", "kind", "backend", "model_id", "seed"):
        if key in meta:
            lines.append(f"- {key.replace('_', ' ')}: `{meta[key]}`")
    fps = speed.get("fps")
    lines.append(f"- frames processed: {speed.get('frames', 0)}; speed: {_fmt(fps)} frames/s "
                 "(time inside the pipeline only)")
    if speed.get("median_ms"):
        stages = ", ".join(f"{k} {v:.1f}" for k, v in speed["median_ms"].items())
        lines.append(f"- median ms per stage: {stages}")
    lines += ["", "## Overall", ""]
    if result.overall:
        lines += _table({"all concepts (pooled)": result.overall})
        lines += ["", f"Mean of per-concept mIoU: {_fmt(result.overall.get('miou_mean_over_concepts'))}"]
    else:
        lines.append("No frame had ground truth: nothing was scored.")
    lines += ["", "## Per concept", ""]
    lines += _table(result.per_concept) if result.per_concept else ["(none)"]
    if result.per_concept:
        lines += ["", "## Outcomes", "",
                  "Each (frame, concept) counted once; in-view outcomes as a share of in-view frames, false alarm "
                  "and true absent of out-of-view frames, look-alike as mine of the frames with an all-object "
                  "ground truth.", ""]
        lines += _outcome_table({"all concepts (pooled)": result.overall, **result.per_concept})
    if result.teach:
        lines += ["", "## Teaching", "", "| concept | shots | self IoU | presence threshold | seconds | note |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, t in result.teach.items():
            lines.append(f"| {name} | {_fmt(t.get('shots'))} | {_fmt(t.get('self_iou'))} | "
                         f"{_fmt(t.get('presence_threshold'))} | {_fmt(t.get('seconds'))} | {t.get('error', '')} |")
    if result.open_vocab:
        lines += open_vocab_lines(result.open_vocab)
    if pictures:
        lines += ["", "## Pictures", ""]
        for title, rel in pictures.items():
            lines += [f"### {title}", "", f"![{title}]({rel})", ""]
    lines += ["", "## How the numbers are computed", "",
              "- mIoU, boundary IoU (Cheng et al., 2 % of the diagonal), J&F (DAVIS, boundary tolerance 0.8 % "
              "of the diagonal): mean over frames where the object is present.",
              "- Presence: a segment on a frame without the object is a false positive; no segment on a frame "
              "with it is a false negative.",
              "- IoU precision/recall: a frame is a hit when the object is present, predicted, and IoU ≥ 0.5; "
              "precision = hits / frames with a prediction, recall = hits / frames with the object.",
              "- Outcomes: object absent -> false alarm (something predicted) or true absent; present -> miss "
              "(nothing predicted), right (IoU ≥ 0.5), spill (IoU < 0.5 but the mask covers ≥ half of the object), "
              "partial (covers under half, but ≥ half of the mask is on the object), else wrong object (most of "
              "the mask is off the object). Look-alike as mine: more than half of the mask lies on a look-alike "
              "of the concept (any frame, present or not; needs the all-object ground truth).",
              "- Overlays: predicted instances tinted in their colour, ground truth outlined in white; captions "
              "give each concept's IoU and outcome."]
    if result.open_vocab:
        lines += [
            "- IoU^per: a personal concept's intersection over union summed over all scored frames "
            "(Σ|P∩G| / Σ|P∪G|, P its personal segments, G its ground truth); per-frame mIoU is the mean over "
            "frames where it is in view.",
            "- Generic mIoU: each pixel takes the category of the segment covering it (personal segments with "
            "their category); per class, IoU = ΣTP / Σ(TP + FP + FN) over all frames, pixels without a class "
            "counted (a label on the background is a false positive); mean over the vocabulary classes seen or "
            "predicted.",
            "- Same-category look-alike: an object in view, not the concept's own, of the concept's category; "
            "counted when more than half of the concept's personal mask lies on it.",
            "- Right category: an object in view with some segment of its category at IoU ≥ 0.5.",
            "- Labelled sheet: every segment tinted with its label (personal: name and category), objects with a "
            "class outlined in white, frames with the lowest mean class IoU first."]
    return "\n".join(lines) + "\n"


def write_report(result: EvalResult, out_dir: str | Path, title: str | None = None) -> dict[str, Path]:
    """Write metrics, per-frame records, plots, the contact sheet and ``report.md`` into ``out_dir``.

    Returns the written files by name (``metrics``, ``per_frame``, ``report``,
    ``concepts_plot``, ``iou_plot``, ``contact_sheet``, ``labelled_sheet``). Plots are skipped
    when there is nothing to draw.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["metrics"] = out / "metrics.json"
    paths["metrics"].write_text(json.dumps(_json_safe(result.to_json()), indent=2))
    paths["per_frame"] = out / "per_frame.json"
    paths["per_frame"].write_text(json.dumps(_json_safe(records_as_dicts(result.records))))
    pictures: dict[str, str] = {}
    if result.per_concept:
        paths["concepts_plot"] = concept_bars(result.per_concept, out / "plots" / "concepts.png")
        pictures["Per concept"] = "plots/concepts.png"
        series = dict(list(result.series().items())[:MAX_SERIES])
        paths["iou_plot"] = iou_over_time(series, out / "plots" / "iou_over_time.png")
        pictures["IoU over time"] = "plots/iou_over_time.png"
    if result.worst:
        paths["contact_sheet"] = contact_sheet(result.worst, out / "contact_sheet.png",
                                               title=title or "worst frames first (white: ground truth)")
        pictures["Worst frames first"] = "contact_sheet.png"
    if result.labelled:
        paths["labelled_sheet"] = contact_sheet(result.labelled, out / "labelled_sheet.png",
                                                title="labelled segments, worst category IoU first "
                                                      "(white: objects with a class)")
        pictures["Labelled segments"] = "labelled_sheet.png"
    paths["report"] = out / "report.md"
    paths["report"].write_text(markdown(result, pictures))
    return paths
