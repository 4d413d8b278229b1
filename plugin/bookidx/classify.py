"""Region classes: the NLN junk scheme, zero-shot classes from prompts, a trained linear classifier.

Layout analysis tags much that is not a picture as one: the National Library of Norway found
about 40 % of the "illustrations" in its scanned books to be blank pages, text or table
fragments and ornaments (Bildesøk, CHR 2024, https://arxiv.org/abs/2410.14969, labels in
Sprakbanken/CHR24-image-retrieval ``data/labelled_data.json``). Its seven classes are the
default scheme here (:data:`CLASSES`, named by :data:`NLN_NAMES`).

Both classifiers are linear in the index's own (unit) embedding space, so one record,
:class:`Classifier`, holds either and is saved beside the index as ``classifier.json``:

* zero-shot (:func:`zero_shot`, here): one row per class, the mean of its prompts' text
  embeddings (prompt ensembling, Radford et al. 2021 §3.1.4) times CLIP's logit scale of 100,
  so the softmax score is CLIP's zero-shot probability; needs a vision-language model;
* trained (:func:`bookidx.classify_train.train`): multinomial logistic regression (scikit-learn, L2,
  balanced class weights) with C chosen by stratified k-fold cross-validation on macro-F1.

A classifier records the model it was made for and refuses vectors of any other
(:meth:`Classifier.check`); :func:`apply` labels an index with it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .embed import Embedder, model_identity
from .errors import BadRequest, IndexMismatch, NotFound, SourceError
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
