"""``bookidx classify zeroshot|train|apply`` and ``bookidx duplicates``: thin shells over
classify.py, classify_train.py and dedup.py, registered on the main group by importing this
module (cli.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli import _errors, cli

_INDEX = click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Index directory.")


@cli.group("classify")
def classify() -> None:
    """Label every item with a class (blank page, text fragment, illustration, map...)."""


@classify.command("zeroshot")
@_INDEX
@click.option("--prompts", "prompts_file", type=click.Path(exists=True, dir_okay=False),
              help='JSON {"class": ["prompt", ...]}; default: the NLN scheme\'s prompts.')
@click.option("--device", default="cpu", show_default=True, help="Device for the text encoder.")
@_errors
def zeroshot_cmd(index_dir, prompts_file, device):
    """Label items by their nearest class prompt (vision-language models only); saves classifier.json."""
    from .classify import CLASSIFIER, DEFAULT_PROMPTS, apply, read_prompts, zero_shot
    from .embed import load_embedder
    from .errors import IndexMismatch
    from .store import Index

    prompts = read_prompts(prompts_file) if prompts_file else DEFAULT_PROMPTS
    with Index.open(index_dir, readonly=False) as idx:
        info = idx.info["model"]
        model = load_embedder(info["model"], device=device)
        if model.ndim != info["ndim"]:
            raise IndexMismatch(f"model {info['model']!r} gives {model.ndim}-d vectors, the index holds {info['ndim']}-d", "model")
        classifier = zero_shot(model, prompts, model=info)
        classifier.save(Path(index_dir) / CLASSIFIER)
        _print_counts(apply(idx, classifier), len(idx))


@classify.command("train")
@click.argument("labels_file", metavar="LABELS.csv", type=click.Path(exists=True, dir_okay=False))
@_INDEX
@click.option("--folds", type=int, default=5, show_default=True, help="Stratified cross-validation folds.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON instead of a table.")
@_errors
def train_cmd(labels_file, index_dir, folds, as_json):
    """Fit a classifier on LABELS.csv, report cross-validated quality and save it as
    classifier.json in the index.

    LABELS.csv has a header with 'label' and either 'id' (item ids) or 'image': the image as
    `bookidx search` prints it (a path, relative ones from here or from the CSV's folder, a URL
    or a IIIF service id), or just its file name.
    """
    import numpy as np

    from .classify import CLASSIFIER
    from .classify_train import read_labels, train
    from .store import Index

    idx = Index.open(index_dir)
    try:
        keys, labels = read_labels(labels_file, idx)
        vectors = np.stack([idx.vector(k) for k in keys])
        classifier, evaluation = train(vectors, labels, idx.info["model"], folds=folds)
    finally:
        idx.close()
    classifier.save(Path(index_dir) / CLASSIFIER)
    click.echo(json.dumps(evaluation.to_dict(), indent=2) if as_json else evaluation.table())
    click.echo(f"saved {Path(index_dir) / CLASSIFIER}; label the index with `bookidx classify apply`", err=True)


@classify.command("apply")
@_INDEX
@click.option("--classifier", "classifier_file", type=click.Path(exists=True, dir_okay=False),
              help="A saved classifier; default: the index's classifier.json.")
@_errors
def apply_cmd(index_dir, classifier_file):
    """Label every item of the index with a saved classifier."""
    from .classify import CLASSIFIER, Classifier, apply
    from .store import Index

    classifier = Classifier.load(classifier_file or Path(index_dir) / CLASSIFIER)
    with Index.open(index_dir, readonly=False) as idx:
        _print_counts(apply(idx, classifier), len(idx))


def _print_counts(counts, total: int) -> None:
    for label, n in counts.most_common():
        click.echo(f"{label:<22} {n:>8}  {n / max(total, 1):6.1%}")


@cli.command("duplicates")
@_INDEX
@click.option("--threshold", type=float, default=0.93, show_default=True, help="Least cosine similarity of two duplicates.")
@click.option("--neighbours", type=int, default=10, show_default=True, help="Nearest items looked at per item.")
@click.option("--max-group", type=int, default=50, show_default=True, help="Largest group; weaker links beyond are dropped.")
@click.option("--whiten", type=int, default=None, help="Score pairs after PCA whitening to this many dimensions (then use a lower --threshold, e.g. 0.45).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="CSV file; default: duplicates.csv in the index.")
@click.option("--show", type=int, default=20, show_default=True, help="Groups printed (0: none).")
@_errors
def duplicates_cmd(index_dir, threshold, neighbours, max_group, whiten, csv_file, show):
    """Find near-duplicate groups (the same picture reprinted), store them per item, write a CSV."""
    from .dedup import find_groups, store_groups, write_csv
    from .store import Index

    with Index.open(index_dir, readonly=False) as idx:
        groups = find_groups(idx, threshold=threshold, neighbours=neighbours, max_size=max_group, whiten=whiten)
        store_groups(idx, groups)
        out = Path(csv_file) if csv_file else Path(index_dir) / "duplicates.csv"
        write_csv(out, idx, groups)
        for group in groups.groups[:show]:
            click.echo(f"group {group[0]} ({len(group)} items)")
            for key in group:
                click.echo(f"  {key}  {idx.get(key).page.image.uri}")
        click.echo(
            f"{len(groups.groups)} groups of {groups.items} items ({len(groups.pairs)} pairs >= {threshold}, "
            f"{groups.capped} left out by --max-group); written to {out}",
            err=True,
        )
