"""The one input layer: every task reads its data through :func:`load` (tables, image folders
and arrays, one typed result) and hands it to a model through :func:`prepare_for_model`, so a
fix to reading is made once."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.acquisition import warn_if_taken_otherwise
from aetool.data.arrays import read_array_file
from aetool.data.images import (
    FolderScan,
    decode_images,
    is_image_source,
    list_images,
    read_image_folder,
    relative_name,
    scan_image_folder,
    working_shape,
)
from aetool.data.preprocess import DataWarning, align_columns, align_to_model, check_input_kind
from aetool.data.tables import ARRAY_SUFFIXES, read_table, require_columns
from aetool.errors import DataError


@dataclass
class TableSpec:
    """How to read the input (saved in the bundle): for tables, which columns are features, ids
    or labels; for images, the size, which class folder is normal, strictness."""

    columns: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    id_column: str | None = None
    label_column: str | None = None
    image_size: list[int] | None = None
    channels: int | None = None
    normal_class: str | None = None
    strict: bool = False
    # how a detector's training images were taken (acquisition.summary), to compare with later
    # folders; None for tables, arrays and bundles saved before it was kept
    source_images: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Loaded:
    """What :func:`load` read: the model's features (a DataFrame of the chosen columns, an
    (N, C, H, W) uint8 image stack, or an array), row ids (the id column, or image paths),
    labels, the source's name, the original image sizes, and the whole table (``frame``) for
    tasks that pass the other columns through."""

    features: Any
    ids: pd.Series | None
    labels: np.ndarray | None
    source: str
    sizes: list[tuple[int, int]] | None = None  # original image sizes, for heat maps
    frame: pd.DataFrame | None = None
    folder: bool = False  # read from an image folder (not an array file)

    @property
    def is_images(self) -> bool:
        """The model sees images: a folder, or an array file of 3 or 4 dimensions."""
        return not isinstance(self.features, pd.DataFrame) and np.ndim(self.features) >= 3

    @property
    def kind(self) -> str:
        """Where the data came from: 'table', 'images' (a folder) or 'array' (an array file)."""
        if self.folder:
            return "images"
        return "table" if isinstance(self.features, pd.DataFrame) else "array"


def class_as_named(given: str | None, classes: Any) -> str | None:
    """The class folder ``--normal-class`` means: as given, else the one folder whose name
    differs only in case (``Good`` for ``good``); as given when none or several do."""
    names = {str(c) for c in classes if c is not None}
    if given is None or given in names:
        return given
    alike = [n for n in names if n.lower() == given.lower()]
    return alike[0] if len(alike) == 1 else given


def _normal_labels(classes: Any, normal: str, source: str, need: bool) -> np.ndarray | None:
    """0 for the normal class, 1 for the others; None for a flat folder unless labels are
    needed (then, as for an unknown class name, an error)."""
    names = [None if c is None else str(c) for c in classes]
    if all(n is None for n in names) and not need:
        return None
    if normal not in names:
        found = sorted({n for n in names if n is not None})
        raise DataError(f"{source}: no class '{normal}' (given as --normal-class); classes: "
                        f"{', '.join(found) or 'none (a flat folder has no classes)'}")
    return np.asarray([0 if n == normal else 1 for n in names])


# Label text and class folder names that mean normal (any case; for labels a trailing dot left
# out: KDD Cup's 'normal.'): good as in MVTec AD's test folders, ok as in BTAD's and the OK/NG
# of inspection lines, negative as in crack photograph sets (Negative, Positive).
NORMAL_WORDS = ("normal", "good", "ok", "benign", "inlier", "negative", "no", "false")


def conventional_normal_class(classes: Any, source: str) -> str | None:
    """The class folder named as normal (NORMAL_WORDS, any case) when there is exactly one, so
    that a folder laid out for evaluation is evaluated without ``--normal-class``; said in a
    warning, since training never uses the classes."""
    names = sorted({str(c) for c in classes if c is not None})
    normal = conventional_name(names)
    if normal is None or len(names) < 2:
        return None
    warnings.warn(f"{source}: class folders {', '.join(names)}; '{normal}' is taken as the "
                  f"normal class for evaluation (--normal-class NAME chooses another; training "
                  f"never uses the classes)", DataWarning, stacklevel=3)
    return normal


def conventional_name(names: Any) -> str | None:
    """The one class name among ``names`` that is NORMAL_WORDS (any case), or
    None when none or several are."""
    matches = [n for n in names if n.lower() in NORMAL_WORDS]
    return matches[0] if len(matches) == 1 else None


def load_images(path: str | Path, spec: TableSpec, need_labels: bool = False,
                labels: str = "binary") -> Loaded:
    """An image folder (flat or class sub-folders) or an image array file; ``labels``
    'binary' marks the normal class 0 and the others 1, 'classes' keeps the class names."""
    path = Path(path)
    refuse_table_options(spec, path)
    size = tuple(spec.image_size) if spec.image_size else None
    if is_image_source(path):
        found = read_image_folder(path, size, spec.strict, spec.channels)
        ids = pd.Series(found.paths, name="path")
        if labels == "classes":
            named = None if all(c is None for c in found.classes) else np.asarray(
                [str(c) for c in found.classes], dtype=object)
            return Loaded(found.images, ids, named, str(path), found.sizes, folder=True)
        normal = class_as_named(spec.normal_class, found.classes) or (
            conventional_normal_class(found.classes, str(path)) if need_labels else None)
        marks = _normal_labels(found.classes, normal, str(path), need_labels) \
            if normal else None
        return Loaded(found.images, ids, marks, str(path), found.sizes, folder=True)
    return _image_array(*read_array_file(path), spec, str(path), need_labels, labels)


def refuse_table_options(spec: TableSpec, source: str | Path) -> None:
    """Column options given for images would be silently ignored: refuse them, saying what
    images have instead."""
    given = [option for option, value in (("--label-column", spec.label_column),
                                          ("--id-column", spec.id_column),
                                          ("--columns", spec.columns),
                                          ("--exclude", spec.exclude)) if value]
    if given and is_image_source(source):
        list_images(Path(source))  # a folder of table parts is named as such first
        raise DataError(f"{source}: {given[0]} is for tables, and these are images: their "
                        "labels are the class folders (--normal-class NAME says which is "
                        "normal) and their ids the file paths")


def scan_images(path: str | Path, spec: TableSpec) -> FolderScan:
    """The headers of an image folder, brought to the size and colours ``spec`` says."""
    refuse_table_options(spec, path)
    size = tuple(spec.image_size) if spec.image_size else None
    scan = scan_image_folder(path, size, spec.strict, spec.channels)
    warn_if_taken_otherwise(scan.root, spec.source_images, scan.sizes, scan.paths)
    return scan


def read_scaled_down(data: str | Path, spec: TableSpec,
                     side_for: Callable[[int, int], int | None], why: str) -> None:
    """An image folder given no size, whose typical images' shorter side is longer than
    ``side_for(height, width)`` (None: any side), is read scaled down to that side, aspect kept
    (``spec.image_size`` set), with a warning that says so and ``why`` (``{side}`` in it: the
    side). A model that works at a smaller size gains nothing from the pixels beyond it, and
    12-megapixel photographs read in full take gigabytes (40 of them: 19 GiB)."""
    if spec.image_size is not None or not is_image_source(data):
        return
    with warnings.catch_warnings(record=True) as said:  # a peek: loading says them once
        warnings.simplefilter("always")
        width, height = scan_images(data, spec).target
    side = side_for(height, width)
    shape = working_shape(height, width, side)
    if shape == (height, width):
        return
    for warning in said:  # reading at a set size will not say what the headers said
        warnings.warn(warning.message, warning.category, stacklevel=2)
    spec.image_size = list(shape)
    warnings.warn(f"{data}: images of {height}x{width} are read at {shape[0]}x{shape[1]}, "
                  f"{why.format(side=side)}", UserWarning, stacklevel=2)


def scanned_classes(scan: FolderScan) -> list[str | None]:
    """The class (first sub-folder) of each scanned file; None for files at the top."""
    classes: list[str | None] = []
    for path in scan.paths:
        parts = Path(relative_name(path, scan.root)).parts
        classes.append(parts[0] if len(parts) > 1 else None)
    return classes


def scan_labels_checked(path: str | Path, spec: TableSpec) -> tuple[FolderScan, str | None]:
    """An image folder scanned for evaluation, and its normal class, found as
    :func:`load_images` finds it (``spec``'s, else a folder named as normal; None when
    there is none to find) and checked from the file names before any image is decoded: the
    class must exist, and images of another class too."""
    scan = scan_images(path, spec)
    classes = scanned_classes(scan)
    normal = class_as_named(spec.normal_class, classes) or conventional_normal_class(
        classes, str(scan.root))
    if normal is not None and _normal_labels(classes, normal, str(scan.root), True).max() == 0:
        raise DataError(f"{scan.root}: every image is in the normal class '{normal}'; "
                        "evaluation needs images of another class (the anomalies) too")
    return scan, normal


IMAGE_CHUNK = 512  # images decoded and scored at a time


def image_folder_chunks(scan: FolderScan, rows: int, normal: str | None = None
                        ) -> Iterator[Loaded]:
    """A scanned image folder ``rows`` images at a time (ids = paths; labels 0 for class
    ``normal`` and 1 for the others when it is given, else none), so scoring and evaluation
    hold one chunk of pixels in memory however large the folder is."""
    produced = 0
    for start in range(0, len(scan.paths), rows):
        found = decode_images(scan, start, start + rows)
        produced += len(found.paths)
        labels = None if normal is None else np.asarray(
            [0 if c is not None and str(c) == normal else 1 for c in found.classes])
        yield Loaded(found.images, pd.Series(found.paths, name="path", dtype=object), labels,
                     str(scan.root), found.sizes, folder=True)
    if not produced:
        raise DataError(f"{scan.root}: none of the images could be read")


def _image_array(x: np.ndarray, y: np.ndarray | None, spec: TableSpec, source: str,
                 need_labels: bool, labels: str) -> Loaded:
    """An image stack read from an array file, rows named by position."""
    ids = pd.Series(np.arange(len(x)), name="index")
    if labels == "classes":
        return Loaded(x, ids, y, source)
    marks = None
    if spec.normal_class is not None and y is not None:
        marks = _normal_labels(y, spec.normal_class, source, need_labels)
    return Loaded(x, ids, marks, source)


def load(path: str | Path, spec: TableSpec | None = None, *, need_labels: bool = False,
         for_scoring: bool = False, labels: str = "binary") -> Loaded:
    """Read ``path`` (a CSV/Parquet table, an image folder, or a .npy/.npz array) and split it
    into features, ids and labels as ``spec`` says. The one reader behind every task.

    ``labels``: 'binary' reads detection labels (0 normal, 1 anomaly; for images the normal
    class against the others), 'classes' keeps class values as they are (conditional training,
    feature evaluation). ``need_labels`` and ``for_scoring``: see :func:`split_frame`. A 2-D
    array file gives its array as the features."""
    spec = spec or TableSpec()
    path = Path(path)
    if is_image_source(path):
        return load_images(path, spec, need_labels, labels)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, y = read_array_file(path)  # read once: its shape says whether it holds images
        if x.ndim >= 3:
            return _image_array(x, y, spec, str(path), need_labels, labels)
        if x.ndim < 2:
            raise DataError(f"{path}: expected a 2-D table or a stack of images, got shape "
                            f"{x.shape}")
        return Loaded(x, None, y if labels == "classes" else None, str(path))
    return split_frame(read_table(path), spec, str(path), need_labels, for_scoring, labels)


def named_columns(loaded: Loaded) -> Loaded:
    """A 2-D array's features as a table with columns x0, x1, ... (how a detector names them,
    so its explanations and saved column list work as for a CSV)."""
    if loaded.kind != "array" or loaded.is_images:
        return loaded
    frame = pd.DataFrame(loaded.features).rename(columns=lambda c: f"x{c}")
    return Loaded(frame, None, None, loaded.source)


def prepare_for_model(model: Any, loaded: Loaded, warn_extra: bool = True) -> Any:
    """``loaded``'s features as ``model`` takes them: the kind checked (images for an image
    model, a table for a table model) and a table's columns matched to the training ones, in
    training order; errors name the source."""
    check_input_kind(model, loaded.is_images, loaded.source)
    if not isinstance(loaded.features, pd.DataFrame):
        return loaded.features
    if warn_extra:
        return align_to_model(loaded.features, model, loaded.source)
    expected = [str(c) for c in model.feature_names_in_]
    return align_columns(loaded.features, expected, loaded.source, warn_extra=False)


def as_written(spec: TableSpec, names: list[str]) -> TableSpec:
    """``spec`` with each column it names as the table writes it: a header written 'id, temp,
    label' (a space after each comma) holds ' label', which --label-column label means."""
    def written(name: str) -> str:
        matches = [n for n in names if n.strip() == name.strip()]
        return matches[0] if name not in names and len(matches) == 1 else name

    return replace(spec, id_column=spec.id_column and written(spec.id_column),
                   label_column=spec.label_column and written(spec.label_column),
                   columns=spec.columns and [written(c) for c in spec.columns],
                   exclude=[written(c) for c in spec.exclude])


PANDAS_INDEX = "Unnamed: 0"  # how pandas reads the empty first header of a written index


def with_written_index(spec: TableSpec, names: list[str], source: str, warn: bool
                       ) -> TableSpec:
    """A table saved by pandas with its index (``df.to_csv(path)``) starts with a column
    without a name, the row labels: it is the row id, not a feature (as a feature a row
    number makes every new row look anomalous), unless the user named an id column or the
    columns to use, or left it out."""
    if spec.id_column is not None or spec.columns or not names or names[0] != PANDAS_INDEX \
            or PANDAS_INDEX in spec.exclude:
        return spec
    if warn:
        warnings.warn(f"{source}: the first column has no name (a pandas index saved with the "
                      f"table); it is taken as the row id, not a feature (--id-column NAME "
                      f"names another)", DataWarning, stacklevel=4)
    return replace(spec, id_column=PANDAS_INDEX)


def split_frame(frame: pd.DataFrame, spec: TableSpec, source: str,
                need_labels: bool = False, for_scoring: bool = False,
                labels: str = "binary") -> Loaded:
    """Split a table (or one chunk of it) into features, ids and labels as ``spec`` says.

    ``for_scoring``: the data goes to an already fitted model, so it may lack the columns the
    spec names that are not features: no id column gives a warning and output without ids, no
    label column means no evaluation, and an excluded column needs no excluding (a missing
    feature column is still an error, later). At fit time each named column must be there: a
    mistyped label column would otherwise make the labels a feature."""
    if spec.image_size:
        raise DataError(f"{source}: --image-size is for images, and this is a table")
    if spec.normal_class is not None and not spec.label_column:
        raise DataError(f"{source}: --normal-class names the normal value of the label column; "
                        "name that column with --label-column")
    frame.columns = [str(c) for c in frame.columns]
    names = list(frame.columns)
    spec = with_written_index(as_written(spec, names), names, source, warn=not for_scoring)
    id_column = spec.id_column
    if for_scoring and id_column is not None and id_column not in names:
        warnings.warn(f"{source}: no column '{id_column}' (the id column at fit time); the "
                      f"output has no id column, its rows are in input order", DataWarning,
                      stacklevel=2)
        id_column = None
    require_columns([id_column], names, source, "--id-column")
    if need_labels or not for_scoring:  # at fit time a typo would make the labels a feature
        require_columns([spec.label_column], names, source, "--label-column")
    require_columns(spec.columns or [], names, source, "--columns")
    if not for_scoring:
        require_columns(spec.exclude, names, source, "--exclude")
    ids = frame[id_column] if id_column else None
    marks = None
    if spec.label_column and spec.label_column in names:
        marks = binary_labels(frame[spec.label_column], spec.label_column, source,
                              spec.normal_class) \
            if labels == "binary" else frame[spec.label_column].to_numpy()
    skip = {spec.id_column, spec.label_column, *spec.exclude}
    chosen = spec.columns or [c for c in frame.columns if c not in skip]
    features = frame[[c for c in chosen if c not in skip]]
    return Loaded(features, ids, marks, source, frame=frame)


def _normal_values(uniques: set) -> set | None:
    """The label values that read as normal (NORMAL_WORDS, any case: 'No' and 'no' alike), or
    None when no value does, two different words do, every value does, or a value is not
    text."""
    if not all(isinstance(v, str) for v in uniques):
        return None
    words = {v: v.strip().rstrip(".").lower() for v in uniques}
    found = {v for v, word in words.items() if word in NORMAL_WORDS}
    if len({words[v] for v in found}) != 1 or found == uniques:
        return None
    return found


def _is_value(value: Any, name: str) -> bool:
    """``value`` of a label column is the one written ``name`` on the command line: the same
    text, or the same number ('2' names 2 and 2.0)."""
    if str(value).strip() == name.strip():
        return True
    try:
        return not isinstance(value, bool) and float(value) == float(name)
    except (TypeError, ValueError):
        return False


def binary_labels(values: object, column: str, source: str, normal: str | None = None
                  ) -> np.ndarray:
    """Labels as 0/1 (1 = anomaly) in a float array, NaN where a row has no label (partly
    labelled data is evaluated on its labelled rows); accepts 0/1, booleans, -1/1 (sklearn's
    -1 = outlier) and text where one value reads as normal ('normal', 'good', 'no', ...: every
    other value is an anomaly, as KDD Cup's attack names are; said in a warning). ``normal``
    (``--normal-class``) names the normal value instead: every other value is an anomaly."""
    series = pd.Series(values)
    known = series.notna().to_numpy()
    if not known.any():
        raise DataError(f"{source}: label column '{column}' is empty; fill it with 0 (normal) "
                        "and 1 (anomaly)")
    given = series[known]
    uniques = set(given.unique().tolist())
    shown = ", ".join(repr(v) for v in sorted(uniques, key=str)[:5])
    if normal is not None:
        named = {v for v in uniques if _is_value(v, normal)}
        if not named:
            raise DataError(f"{source}: label column '{column}' has no value '{normal}' (given "
                            f"as --normal-class); its values: {shown}")
        coded = (~given.isin(named)).astype(int).to_numpy()
    elif uniques <= {0, 1} or uniques <= {True, False}:
        coded = given.astype(int).to_numpy()
    elif uniques <= {-1, 1}:
        coded = (given == -1).astype(int).to_numpy()
    elif (worded := _normal_values(uniques)) is not None:
        coded = (~given.isin(worded)).astype(int).to_numpy()
        others = sorted(str(v) for v in uniques - worded)
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        listed = " / ".join(repr(v) for v in sorted(worded))
        warnings.warn(f"{source}: label column '{column}': {listed} is taken as normal (0), "
                      f"{', '.join(repr(v) for v in others[:3])}{more} as anomalies (1)",
                      DataWarning, stacklevel=3)
    else:
        raise DataError(
            f"{source}: label column '{column}' must be binary (0 = normal, 1 = anomaly); "
            f"found {len(uniques)} values: {shown}; name the normal value with --normal-class "
            f"VALUE (the others count as anomalies), write 0 and 1, or name the normal rows "
            f"with one of: {', '.join(NORMAL_WORDS)}"
        )
    labels = np.full(len(series), np.nan)
    labels[known] = coded
    return labels
