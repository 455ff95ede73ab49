"""Encoder features: export codes from a bundle, and cross-validated evaluation of variants as
feature extractors next to raw-feature and PCA baselines."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.images import is_image_source
from aetool.data.output import (
    atomic_output,
    check_output_file,
    table_output_kind,
    to_stdout,
    write_table,
)
from aetool.data.preprocess import TablePreprocessor, data_source
from aetool.data.source import Loaded, TableSpec, load, prepare_for_model
from aetool.device import Inference
from aetool.errors import AetoolError, DataError
from aetool.estimators import Autoencoder, EncoderTransformer, TableEncoder
from aetool.plots import _pyplot, save_figure
from aetool.tasks.train import load_for_training

CLASSIFIERS = ("logreg", "svm", "rf", "knn")


def spec_for_model(model: Any, data: str | Path, label_column: str | None,
                   id_column: str | None) -> TableSpec:
    """How to read ``data`` for a trained model: an image folder for an image model at its
    input size and colours, so images of any size give codes."""
    shape = getattr(model.preprocessor_, "shape", None)
    sized = {"image_size": list(shape[1:]), "channels": int(shape[0])} \
        if shape and is_image_source(data) else {}
    return TableSpec(id_column=id_column, label_column=label_column, **sized)


def export_features(bundle: str | Path, data: str | Path, out: str | Path,
                    include_logvar: bool = False, label_column: str | None = None,
                    id_column: str | None = None, inference: Inference | None = None) -> int:
    """Write the encoder codes of ``data`` (CSV, TSV, Parquet or .npy by ``out``'s suffix)."""
    out = Path(out)
    kind = table_output_kind(out, also=(".npy",))
    model = Autoencoder.load(bundle).set_inference(inference=inference or Inference("cpu"))
    loaded = load(data, spec_for_model(model, data, label_column, id_column), labels="classes")
    features = prepare_for_model(model, loaded)
    if kind == "npy" and (label_column or id_column):
        warnings.warn(f"{out}: a .npy file holds only the codes, so the "
                      f"{' and '.join(f'{c!r}' for c in (id_column, label_column) if c)} "
                      "column(s) are not written; name a .csv or .parquet output to keep them",
                      UserWarning, stacklevel=2)
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

    width = min(code_size, pca_width or code_size)
    methods: dict[str, list[Any]] = {"raw": [TableEncoder()],
                                     f"pca{width}": [TableEncoder(), PCA(width, random_state=0)]}
    for variant in variants:
        methods[variant] = [EncoderTransformer(variant=variant, code_size=code_size,
                                               device="cpu", **train_settings)]
    return methods


def _pca_width(x: Any, train_rows: int) -> int:
    """The most PCA components the encoded features of ``x`` allow in a training fold."""
    if isinstance(x, pd.DataFrame):
        width = TableEncoder().fit(x).transform(x.head(1)).shape[1]
    else:
        width = int(np.prod(np.shape(x)[1:]))
    return max(1, min(width, train_rows))


def evaluate_features(data: Loaded, variants: list[str], classifiers: list[str],
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
        scores = cross_validate(pipeline, inputs, y, cv=splitter,  # a failed fit says why
                                scoring=("accuracy", "f1_macro"), error_score="raise")
        rows.append({"method": method, "classifier": classifier,
                     "accuracy_mean": float(scores["test_accuracy"].mean()),
                     "accuracy_std": float(scores["test_accuracy"].std()),
                     "macro_f1_mean": float(scores["test_f1_macro"].mean()),
                     "macro_f1_std": float(scores["test_f1_macro"].std())})
    return pd.DataFrame(rows)


def accuracy_chart(table: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bars: accuracy of each method, one bar per classifier, std as error bars."""
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
    ax.set(ylim=(0.0, 1.0), ylabel="accuracy (CV mean ± std)", title="Features for classifiers")
    ax.legend(fontsize=8, ncol=len(classifiers))
    return save_figure(fig, path)


def run_export(bundle: str, data: str, output: str, inference: Inference,
               include_logvar: bool = False, label_column: str | None = None,
               id_column: str | None = None) -> int:
    """``aetool features``: check the output, write the codes; returns the rows written."""
    check_output_file(output, (data,))
    return export_features(bundle, data, output, include_logvar, label_column, id_column,
                           inference)


def without_unusable_columns(loaded: Loaded) -> Loaded:
    """A table without the columns no model can use, checked once on the whole table (one
    warning, one refusal) rather than again in every cross-validation fold."""
    if not isinstance(loaded.features, pd.DataFrame):
        return loaded
    usable = set(TablePreprocessor.fit(loaded.features, loaded.source).order)
    kept = [c for c in loaded.features.columns if str(c) in usable]
    return dataclasses.replace(loaded, features=loaded.features[kept])


def run_evaluate_features(data: str, output: str, spec: TableSpec, variants: list[str],
                          classifiers: list[str], code_size: int, folds: int,
                          epochs: int | None, progress: bool = True) -> tuple[pd.DataFrame, Path]:
    """``aetool evaluate-features``: the cross-validated table, written to ``output`` with its
    bar chart beside it as PNG. ``epochs`` None: the extractor's default (and its step rule);
    a number is trained as given."""
    if to_stdout(output):
        raise DataError("-: evaluate-features writes a bar chart beside its table; name a "
                        ".csv file")
    chart = Path(output).with_suffix(".png")
    check_output_file(output, (data,))
    check_output_file(chart, (data,))
    loaded = load_for_training(data, spec)
    told = {} if epochs is None else {"epochs": epochs}
    with data_source(loaded.source):
        loaded = without_unusable_columns(loaded)
        table = evaluate_features(loaded, variants, classifiers, code_size, folds, told,
                                  progress=progress)
    write_table(table, output)
    return table, accuracy_chart(table, chart)
