"""Training a region classifier on labelled items: the labels, the fit, its cross-validated quality.

:func:`train` fits a multinomial logistic regression (scikit-learn: L2, balanced class weights)
on the index's own unit vectors, choosing C from :data:`C_GRID` by stratified k-fold
cross-validation on macro-F1, and returns a :class:`~bookidx.classify.Classifier` (the record a
zero-shot classifier is too) with its out-of-fold :class:`Evaluation`. Labels come from a LABELS.csv (:func:`read_labels`:
item ids or image file names) or from the National Library of Norway's ``labelled_data.json``
(:func:`nln_labels`; Bildesøk, CHR 2024, https://arxiv.org/abs/2410.14969, scheme in classify.py).
Zero-shot classifiers, the saved record and labelling an index are classify.py's part.

scikit-learn: https://scikit-learn.org/stable/modules/linear_model.html#logistic-regression
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .classify import NLN_NAMES, Classifier
from .embed import model_identity
from .errors import BadRequest, ConfigError, SourceError
from .info import plain
from .store import Index

#: The grid C is chosen from: inverse L2 strength. Unit vectors need large weights for confident
#: logits, so the grid reaches far above scikit-learn's default of 1.
C_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated quality of a trained classifier: out-of-fold predictions at the chosen C.

    C is chosen on the same folds, which makes these numbers slightly optimistic (a nested
    cross-validation would not be); with a handful of C values the bias is small.
    """

    classes: tuple[str, ...]
    confusion: np.ndarray  # rows: true class, columns: predicted class
    C: float
    folds: int
    scores_by_C: dict[float, float]  # mean macro-F1 over folds for every C tried

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _ratio(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    def to_dict(self) -> dict:
        return {
            "classes": list(self.classes),
            "C": self.C,
            "folds": self.folds,
            "items": int(self.confusion.sum()),
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_class": {
                c: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
                for c, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1, self.support)
            },
            "confusion": self.confusion.tolist(),
            "macro_f1_by_C": {str(c): round(s, 4) for c, s in self.scores_by_C.items()},
        }

    def table(self) -> str:
        """Per-class precision/recall/F1, the totals and the confusion matrix, as plain text."""
        width = max(12, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}}  precision  recall     f1  support"]
        for c, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1, self.support):
            lines.append(f"{c:<{width}}  {p:9.3f}  {r:6.3f}  {f:5.3f}  {s:7d}")
        lines.append(f"{'macro':<{width}}  {self.precision.mean():9.3f}  {self.recall.mean():6.3f}  {self.macro_f1:5.3f}  {self.support.sum():7d}")
        lines.append(f"accuracy {self.accuracy:.3f}; C = {self.C:g} chosen by {self.folds}-fold stratified cross-validation")
        lines.append("")
        lines.append("confusion (rows: true, columns: predicted)")
        short = [c[:10] for c in self.classes]
        lines.append(" " * width + "".join(f"{s:>11}" for s in short))
        for c, row in zip(self.classes, self.confusion):
            lines.append(f"{c:<{width}}" + "".join(f"{int(n):>11d}" for n in row))
        return "\n".join(lines)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def train(
    vectors: np.ndarray,
    labels: Sequence[str],
    model: Mapping[str, Any],
    *,
    folds: int = 5,
    grid: Sequence[float] = C_GRID,
    seed: int = 0,
) -> tuple[Classifier, Evaluation]:
    """Fit a regularised logistic regression on labelled vectors, choosing C by cross-validation.

    Args:
        vectors: (n x ndim) unit vectors from the index; labels: one class per row.
        model: the index's model record, saved with the classifier.
        folds: stratified folds (fewer when the rarest class has fewer items).

    Returns:
        The classifier refitted on every item, and its cross-validated :class:`Evaluation`.

    Raises:
        BadRequest: fewer than two classes, or a class with a single item.
        ConfigError: scikit-learn is not installed.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError as e:
        raise ConfigError("training needs scikit-learn: pip install 'bookidx[classify]'", "classify") from e
    x = np.asarray(vectors, dtype=np.float32)
    counts = Counter(labels)
    classes = tuple(sorted(counts))
    if len(classes) < 2:
        raise BadRequest(f"need at least two classes to tell apart, got {list(classes)}", "labels")
    rare = min(classes, key=lambda c: counts[c])
    if counts[rare] < 2:
        raise BadRequest(f"class {rare!r} has a single labelled item; cross-validation needs two or more", "labels")
    y = np.array([classes.index(label) for label in labels])
    k = min(folds, counts[rare])
    splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y))

    def fit(c: float, rows: np.ndarray) -> Any:
        return LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x[rows], y[rows])

    best: tuple[float, float, np.ndarray] | None = None
    scores: dict[float, float] = {}
    for c in grid:
        predicted = np.empty_like(y)
        for train_rows, test_rows in splits:
            predicted[test_rows] = fit(c, train_rows).predict(x[test_rows])
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(confusion, (y, predicted), 1)
        scores[float(c)] = Evaluation(classes, confusion, float(c), k, {}).macro_f1
        if best is None or scores[float(c)] > best[0]:  # ties keep the smaller C: more regularised
            best = (scores[float(c)], float(c), confusion)
    assert best is not None
    evaluation = Evaluation(classes, best[2], best[1], k, scores)
    final = fit(best[1], np.arange(len(y)))
    weights, bias = final.coef_.astype(np.float32), final.intercept_.astype(np.float32)
    if len(classes) == 2:  # scikit-learn keeps one row for two classes: softmax([0, z]) = sigmoid(z)
        weights, bias = np.vstack([np.zeros_like(weights), weights]), np.concatenate([[0.0], bias]).astype(np.float32)
    details = {"C": best[1], "items": len(y), "evaluation": evaluation.to_dict()}
    return Classifier(classes, weights, bias, plain(model_identity(model)), "logistic", details), evaluation


def read_labels(path: str | Path, index: Index) -> tuple[list[int], list[str]]:
    """Item keys and labels from a CSV with a ``label`` column and an ``id`` or ``image`` column.

    ``id`` is an item key; ``image`` names an image as ``bookidx search`` prints it (its path,
    absolute or relative to the current folder or the CSV's, its URL or IIIF service id) or by
    its file name alone (the last part of its path or URL), and must name exactly one indexed
    item. Rows with an empty label are skipped.

    Raises:
        BadRequest: a missing column, an unknown or ambiguous item, or two labels for one item,
            naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise BadRequest(f"cannot read labels: {e}", str(path)) from e
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if "label" not in columns or not columns & {"id", "image"}:
        raise BadRequest(f"needs a 'label' column and an 'id' or 'image' column, has {sorted(columns)}", str(path))
    by_image = _items_by_image(index) if "id" not in columns else {}
    labelled: dict[int, str] = {}
    for line, row in enumerate(reader, start=2):
        where, label = f"{path}:{line}", (row.get("label") or "").strip()
        if not label:
            continue
        if "id" in columns:
            raw = (row.get("id") or "").strip()
            if not raw.isdigit() or not index.has([int(raw)])[0]:
                raise BadRequest(f"no indexed item with id {raw!r}", where)
            key = int(raw)
        else:
            name = (row.get("image") or "").strip()
            keys = _image_keys(by_image, name, path.parent)
            if len(keys) != 1:
                raise BadRequest(
                    f"image {name!r} is " + ("not indexed (give it as `bookidx search` prints it, or its file name)"
                                             if not keys else f"in {len(keys)} items: label them by id"),
                    where,
                )
            key = keys[0]
        if labelled.get(key, label) != label:
            raise BadRequest(f"item {key} is labelled both {labelled[key]!r} and {label!r}", where)
        labelled[key] = label
    if not labelled:
        raise BadRequest("no labelled rows", str(path))
    return list(labelled), list(labelled.values())


def _items_by_image(index: Index) -> dict[str, list[int]]:
    """Item keys by image file name, and by the image's full path, URL and service id."""
    out: dict[str, list[int]] = {}
    for key, region in index.items():
        image = region.page.image
        path = os.path.normpath(image.path) if image.path else None
        for ref in {image_name(image.uri), path, image.url, image.service} - {None, ""}:
            out.setdefault(ref, []).append(key)
    return out


def _image_keys(by_image: Mapping[str, list[int]], name: str, folder: Path) -> list[int]:
    """The items a LABELS.csv ``image`` cell names: a bare file name by name, anything longer
    as the whole path or URL (a relative path from the current folder or the CSV's)."""
    if not name:
        return []
    if "://" in name:
        return by_image.get(name) or by_image.get(name.rstrip("/"), [])  # service ids have no trailing slash
    if "/" not in name and os.sep not in name:
        return by_image.get(name, [])
    for candidate in (os.path.abspath(name), os.path.abspath(folder / name)):
        if candidate in by_image:
            return by_image[candidate]
    return []


def image_name(uri: str) -> str:
    """The file name of an image path or URL: what a LABELS.csv ``image`` column holds."""
    return PurePosixPath(urlparse(uri).path if "://" in uri else uri.replace("\\", "/")).name


def nln_labels(data: bytes) -> list[tuple[str, str]]:
    """(region URL, class) pairs from NLN's ``labelled_data.json`` ({class: {url: bool}}).

    Raises:
        SourceError: not that shape, an unknown class, or a URL with no or several classes.
    """
    try:
        doc = json.loads(data)
        truth = {url for table in doc.values() for url, on in table.items() if on}
    except (ValueError, AttributeError) as e:
        raise SourceError(f"not NLN labelled_data.json: {e}", "labelled_data.json") from e
    unknown = set(doc) - set(NLN_NAMES)
    if unknown:
        raise SourceError(f"unknown classes {sorted(unknown)}", "labelled_data.json")
    out = []
    for url in sorted(truth):
        names = [name for name, table in doc.items() if table.get(url)]
        if len(names) != 1:
            raise SourceError(f"{url} has {len(names)} classes, expected one", "labelled_data.json")
        out.append((url, NLN_NAMES[names[0]]))
    return out
