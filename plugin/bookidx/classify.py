"""Region classes: the NLN junk scheme, zero-shot classes from prompts, a trained linear classifier.

Layout analysis tags much that is not a picture as one: the National Library of Norway found
about 40 % of the "illustrations" in its scanned books to be blank pages, text or table
fragments and ornaments (Bildesøk, CHR 2024, https://arxiv.org/abs/2410.14969, labels in
Sprakbanken/CHR24-image-retrieval ``data/labelled_data.json``). Its seven classes are the
default scheme here (:data:`CLASSES`, named by :data:`NLN_NAMES`).

Both classifiers are linear in the index's own (unit) embedding space, so one record,
:class:`Classifier`, holds either and is saved beside the index as ``classifier.json``:

* zero-shot (:func:`zero_shot`): one row per class, the mean of its prompts' text embeddings
  (prompt ensembling, Radford et al. 2021 §3.1.4) times CLIP's logit scale of 100, so the
  softmax score is CLIP's zero-shot probability; needs a vision-language model;
* trained (:func:`train`): multinomial logistic regression (scikit-learn, L2, balanced class
  weights) with C chosen by stratified k-fold cross-validation on macro-F1.

A classifier records the model it was made for and refuses vectors of any other
(:meth:`Classifier.check`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .embed import Embedder
from .errors import BadRequest, ConfigError, IndexMismatch, NotFound, SourceError
from .embed import model_identity
from .info import plain, write_json
from .store import Index

#: The NLN scheme, as stored in the index (``cls``) and given to ``class=`` filters.
CLASSES = (
    "blank-page",
    "segmentation-anomaly",
    "illustration",
    "musical-notation",
    "map",
    "mathematical-chart",
    "graphical-element",
)
#: The class names of NLN's labelled_data.json (and its Label Studio template) → ours.
NLN_NAMES = {
    "Blank page": "blank-page",
    "Segmentation anomaly": "segmentation-anomaly",
    "Illustration or photograph": "illustration",
    "Musical notation": "musical-notation",
    "Map": "map",
    "Mathematical chart": "mathematical-chart",
    "Graphical element": "graphical-element",
    "Graphical element (other)": "graphical-element",
}
#: Prompts per class for zero-shot labels. "Segmentation anomaly" is what layout analysis
#: mistakes for a picture: text and table fragments.
DEFAULT_PROMPTS: dict[str, tuple[str, ...]] = {
    "blank-page": ("a blank page", "an empty sheet of paper", "a scan of an empty book page"),
    "segmentation-anomaly": ("a block of printed text", "a fragment of a table", "a few lines of printed text"),
    "illustration": ("an illustration", "a photograph", "a drawing", "an engraving or woodcut picture"),
    "musical-notation": ("sheet music", "musical notation", "a musical score"),
    "map": ("a map", "a geographical map", "a city plan"),
    "mathematical-chart": ("a chart", "a mathematical graph with axes", "a diagram with a plot"),
    "graphical-element": ("a decorative ornament", "a logo or emblem", "a stamp", "a decorative border or rule"),
}
#: CLIP's learned logit scale (exp(4.6052)): cosine → logits whose softmax is CLIP's zero-shot probability.
TEMPERATURE = 100.0
CLASSIFIER = "classifier.json"
#: The grid C is chosen from: inverse L2 strength. Unit vectors need large weights for confident
#: logits, so the grid reaches far above scikit-learn's default of 1.
C_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True, eq=False)
class Classifier:
    """A linear classifier over one model's unit vectors: softmax(x @ weights.T + bias).

    Attributes:
        classes: the labels, one per row of ``weights``.
        weights: (classes x ndim) float32; bias: (classes,) float32.
        model: the index model record (model id, ndim, preprocess) the weights are for.
        method: "zeroshot" or "logistic".
        details: prompts (zero-shot) or C and the cross-validated evaluation (trained).
    """

    classes: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    model: dict
    method: str
    details: dict = field(default_factory=dict)

    def predict(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The most likely class of each row and its probability (in [0, 1])."""
        rows = np.asarray(vectors, dtype=np.float32).reshape(-1, self.weights.shape[1])
        probs = softmax(rows @ self.weights.T + self.bias)
        best = probs.argmax(axis=1)
        return [self.classes[i] for i in best], probs[np.arange(len(rows)), best]

    def check(self, model: Mapping[str, Any], where: str) -> None:
        """Refuse vectors of another model than the one this classifier was made for.

        Raises:
            IndexMismatch: ``model`` (an index's ``info["model"]``) is not the classifier's.
        """
        if plain(model_identity(model)) != plain(model_identity(self.model)):
            raise IndexMismatch(
                f"the classifier was made for model {self.model.get('model')!r} ({self.model.get('ndim')}-d); "
                f"{where} holds {model.get('model')!r} ({model.get('ndim')}-d) vectors: train it again on this index",
                "classifier",
            )

    @cached_property
    def digest(self) -> str:
        """What decides its labels (classes, weights, bias, model), hashed: two classifiers with
        the same digest label every vector alike. Items dropped by class are remembered under it
        (runner.py). Saving rounds the weights, so a saved classifier is compared as loaded."""
        h = hashlib.sha256(json.dumps([list(self.classes), plain(self.model)], sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.weights, np.float32).tobytes())
        h.update(np.ascontiguousarray(self.bias, np.float32).tobytes())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "classes": list(self.classes),
            "method": self.method,
            "model": self.model,
            "weights": self.weights.round(7).tolist(),
            "bias": self.bias.round(7).tolist(),
            "details": self.details,
        }

    def save(self, path: str | Path) -> None:
        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """Read a ``classifier.json``.

        Raises:
            NotFound: no such file. SourceError: not a classifier.
        """
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"no classifier at {path}: run `bookidx classify train` or `zeroshot` first", str(path))
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            weights = np.asarray(doc["weights"], dtype=np.float32)
            bias = np.asarray(doc["bias"], dtype=np.float32)
            classes = tuple(str(c) for c in doc["classes"])
            model, method = dict(doc["model"]), str(doc["method"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SourceError(f"not a bookidx classifier: {e}", str(path)) from e
        if weights.ndim != 2 or weights.shape[0] != len(classes) or bias.shape != (len(classes),):
            raise SourceError(f"weights {weights.shape} and bias {bias.shape} do not fit {len(classes)} classes", str(path))
        return cls(classes, weights, bias, model, method, dict(doc.get("details") or {}))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# -- zero-shot -------------------------------------------------------------------------------


def zero_shot(
    embedder: Embedder, prompts: Mapping[str, Sequence[str]] = DEFAULT_PROMPTS, *, model: Mapping[str, Any] | None = None
) -> Classifier:
    """A classifier from label prompts, embedded with ``embedder``'s text tower.

    ``model`` is the model record of the index it is for (default: the embedder's own); it
    differs only in image preprocessing, which the text tower does not see.

    Raises:
        BadRequest: the model embeds images only, or a class has no prompt.
    """
    if not embedder.supports_text:
        raise BadRequest(
            f"model {embedder.model_id!r} embeds images only, so it cannot compare pictures with label "
            "prompts: label some items and use `bookidx classify train` instead",
            "model",
        )
    classes = tuple(prompts)
    if not classes:
        raise BadRequest("no classes to choose from", "prompts")
    rows = []
    for label in classes:
        texts = [prompts[label]] if isinstance(prompts[label], str) else list(prompts[label])
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise BadRequest(f"class {label!r} has no prompt", "prompts")
        mean = embedder.embed_texts(texts).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    weights = TEMPERATURE * np.stack(rows).astype(np.float32)
    return Classifier(
        classes, weights, np.zeros(len(classes), np.float32), plain(model_identity(model or embedder.info)), "zeroshot",
        {"prompts": {c: list(prompts[c]) if not isinstance(prompts[c], str) else [prompts[c]] for c in classes},
         "temperature": TEMPERATURE},
    )


def read_prompts(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Prompts from a JSON file: ``{"map": ["a map", "a city plan"], "blank-page": "a blank page"}``.

    Raises:
        SourceError: unreadable, not an object, or a class without string prompts.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot read prompts: {e}", str(path)) from e
    if not isinstance(doc, dict) or not doc:
        raise SourceError('expected {"class": ["prompt", ...], ...}', str(path))
    out = {}
    for label, value in doc.items():
        texts = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise SourceError(f"class {label!r}: give a prompt or a list of prompts", str(path))
        out[str(label)] = texts
    return out


# -- trained ---------------------------------------------------------------------------------


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

    ``id`` is an item key; ``image`` an image file name (the last part of its path or URL),
    which must name exactly one indexed item. Rows with an empty label are skipped.

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
            keys = by_image.get(name, [])
            if len(keys) != 1:
                raise BadRequest(
                    f"image {name!r} is " + ("not indexed" if not keys else f"in {len(keys)} items: label them by id"),
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
    out: dict[str, list[int]] = {}
    for key, region in index.items():
        out.setdefault(image_name(region.page.image.uri), []).append(key)
    return out


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


# -- labelling an index ----------------------------------------------------------------------


def apply(index: Index, classifier: Classifier, *, batch: int = 4096) -> Counter:
    """Label every item of ``index`` (opened for writing) with ``classifier``; commit per batch.

    Returns:
        How many items each class got.

    Raises:
        IndexMismatch: the classifier was made for another model.
    """
    classifier.check(index.info["model"], str(index.path))
    counts: Counter = Counter()
    for keys, rows in index.vector_batches(batch):
        labels, scores = classifier.predict(rows)
        index.set_class(keys.tolist(), labels, scores.tolist())
        index.commit()
        counts.update(labels)
    return counts
