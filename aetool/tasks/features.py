"""Encoder features: export codes from a bundle, and cross-validated evaluation of variants as
feature extractors next to raw-feature and PCA baselines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.arrays import read_array_file
from aetool.data.output import atomic_output, table_output_kind, write_table
from aetool.data.preprocess import align_to_model, check_input_kind, data_source
from aetool.data.tables import ARRAY_SUFFIXES, read_table, require_columns
from aetool.errors import AetoolError, DataError

CLASSIFIERS = ("logreg", "svm", "rf", "knn")


@dataclass
class LabelledData:
    features: Any  # DataFrame for tables, array for images/arrays
    labels: np.ndarray | None
    ids: pd.Series | None
    source: str


def load_labelled(path: str | Path, label_column: str | None = None,
                  id_column: str | None = None, exclude: tuple[str, ...] = (),
                  columns: list[str] | None = None) -> LabelledData:
    """Features, optional labels and ids from a table (CSV/Parquet) or an array file;
    ``columns`` keeps only those features, ``exclude`` leaves some out."""
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, y = read_array_file(path)
        return LabelledData(x, y, None, str(path))
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    for role, column in (("--label-column", label_column), ("--id-column", id_column)):
        require_columns([column], list(frame.columns), str(path), role)
    require_columns(exclude, list(frame.columns), str(path), "--exclude")
    require_columns(columns or [], list(frame.columns), str(path), "--columns")
    labels = frame[label_column].to_numpy() if label_column else None
    ids = frame[id_column] if id_column else None
    drop = [c for c in (label_column, id_column, *exclude) if c]
    features = frame.drop(columns=drop)
    if columns:
        features = features[[c for c in columns if c not in drop]]
    return LabelledData(features, labels, ids, str(path))


def export_features(bundle: str | Path, data: str | Path, out: str | Path,
                    include_logvar: bool = False, label_column: str | None = None,
                    id_column: str | None = None, inference: dict[str, Any] | None = None) -> int:
    """Write the encoder codes of ``data`` (CSV, TSV, Parquet or .npy by ``out``'s suffix)."""
    from aetool.estimators import Autoencoder
    from aetool.features import EncoderTransformer

    out = Path(out)
    kind = table_output_kind(out, also=(".npy",))
    model = Autoencoder.load(bundle).set_inference(**(inference or {"device": "cpu"}))
    loaded = load_labelled(data, label_column, id_column)
    features = loaded.features
    check_input_kind(model, np.ndim(features) >= 3, loaded.source)
    if isinstance(features, pd.DataFrame):
        features = align_to_model(features, model, loaded.source)
    with data_source(loaded.source):
        codes = model.transform(features)
        if include_logvar:
            codes = np.concatenate([codes, EncoderTransformer.log_variances(model, features)], 1)
    n_code = model.model_.code_size
    names = [f"code_{i}" for i in range(n_code)]
    names += [f"logvar_{i}" for i in range(codes.shape[1] - n_code)]
    if kind == "npy":
        with atomic_output(out, "wb") as handle:
            np.save(handle, codes)
        return len(codes)
    frame = pd.DataFrame(codes, columns=names)
    if loaded.labels is not None:
        frame.insert(0, label_column or "label", loaded.labels)
    if loaded.ids is not None:
        frame.insert(0, loaded.ids.name, loaded.ids.to_numpy())
    write_table(frame, out)
    return len(frame)


def make_classifier(name: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    factories = {
        "logreg": lambda: LogisticRegression(max_iter=2000),
        "svm": lambda: SVC(),
        "rf": lambda: RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5),
    }
    if name not in factories:
        raise AetoolError(f"unknown classifier '{name}'; choose from {', '.join(CLASSIFIERS)}")
    return factories[name]()


def feature_pipelines(variants: list[str], code_size: int, train_settings: dict[str, Any],
                      pca_width: int | None = None) -> dict[str, list[Any]]:
    """Method name -> pipeline steps (before the scaler and classifier); the PCA peer has the
    codes' width unless ``pca_width`` (what the data allows) is smaller."""
    from sklearn.decomposition import PCA

    from aetool.features import EncoderTransformer, TableEncoder

    width = min(code_size, pca_width or code_size)
    methods: dict[str, list[Any]] = {"raw": [TableEncoder()],
                                     f"pca{width}": [TableEncoder(), PCA(width, random_state=0)]}
    for variant in variants:
        methods[variant] = [EncoderTransformer(variant=variant, code_size=code_size,
                                               device="cpu", **train_settings)]
    return methods


def _pca_width(x: Any, train_rows: int) -> int:
    """The most PCA components the encoded features of ``x`` allow in a training fold."""
    from aetool.features import TableEncoder

    if isinstance(x, pd.DataFrame):
        width = TableEncoder().fit(x).transform(x.head(1)).shape[1]
    else:
        width = int(np.prod(np.shape(x)[1:]))
    return max(1, min(width, train_rows))


def evaluate_features(data: LabelledData, variants: list[str], classifiers: list[str],
                      code_size: int, folds: int, train_settings: dict[str, Any] | None = None,
                      progress: bool = True) -> pd.DataFrame:
    """Accuracy and macro-F1 (mean ± std over stratified folds) per method × classifier; every
    transformer, the autoencoders included, is fitted inside each fold on its training part."""
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tqdm.auto import tqdm

    if data.labels is None:
        raise DataError(f"{data.source}: evaluate-features needs labels (--label-column, or "
                        "'y' in an .npz file)")
    x = data.features
    y = np.asarray(data.labels)
    if folds < 2 or np.unique(y, return_counts=True)[1].min() < folds:
        raise DataError(f"{data.source}: every class needs at least --cv {folds} rows")
    methods = feature_pipelines(variants, code_size, train_settings or {},
                                pca_width=_pca_width(x, len(y) - len(y) // folds))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    rows = []
    jobs = [(m, c) for m in methods for c in classifiers]
    for method, classifier in tqdm(jobs, desc="evaluating", disable=not progress):
        steps = methods[method]
        inputs = x if method in variants or isinstance(x, pd.DataFrame) else \
            np.asarray(x, dtype=np.float32).reshape(len(y), -1)
        pipeline = make_pipeline(*steps, StandardScaler(), make_classifier(classifier))
        scores = cross_validate(pipeline, inputs, y, cv=splitter,
                                scoring=("accuracy", "f1_macro"))
        rows.append({"method": method, "classifier": classifier,
                     "accuracy_mean": float(scores["test_accuracy"].mean()),
                     "accuracy_std": float(scores["test_accuracy"].std()),
                     "macro_f1_mean": float(scores["test_f1_macro"].mean()),
                     "macro_f1_std": float(scores["test_f1_macro"].std())})
    return pd.DataFrame(rows)


def accuracy_chart(table: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bars: accuracy of each method, one bar per classifier, std as error bars."""
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    methods = list(dict.fromkeys(table["method"]))
    classifiers = list(dict.fromkeys(table["classifier"]))
    width = 0.8 / len(classifiers)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(methods), 3.8))
    for i, clf in enumerate(classifiers):
        part = table[table["classifier"] == clf].set_index("method").reindex(methods)
        ax.bar(np.arange(len(methods)) + i * width, part["accuracy_mean"], width,
               yerr=part["accuracy_std"], label=clf, capsize=2)
    ax.set_xticks(np.arange(len(methods)) + width * (len(classifiers) - 1) / 2, methods)
    low = max(0.0, float(table["accuracy_mean"].min()) - 0.1)
    ax.set(ylim=(low, 1.0), ylabel="accuracy (CV mean ± std)", title="Features for classifiers")
    ax.legend(fontsize=8, ncol=len(classifiers))
    return save_figure(fig, path)
