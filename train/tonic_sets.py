"""Real event data sets through tonic, from a local folder only.

tonic downloads whenever its own ``_check_exists()`` fails (it wants the original archive next to
the extracted files and thousands of files), and it has no switch to turn that off. There is no
network here, and a half-finished download is worse than a clear message. So this module checks
the folder itself, against the layout tonic reads, and then opens tonic's own class through a
subclass whose existence check is ours and whose ``download`` refuses. The subclasses keep tonic's
class names, because tonic places the files under ``<data_dir>/<ClassName>/``.

Layouts (``DATA_DIR`` is what ``--data-dir`` names; ``DATA_DIR/NMNIST`` itself is accepted too):

    nmnist      DATA_DIR/NMNIST/Train/<digit 0-9>/*.bin and DATA_DIR/NMNIST/Test/<digit>/*.bin
                (N-MNIST's 5-byte events, as in the official Train.zip / Test.zip)
    dvsgesture  DATA_DIR/DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label 0-10>.npy and
                DATA_DIR/DVSGesture/ibmGestureTest/... (tonic's preprocessed N x 4 arrays x, y, p, t[ms])
    shd         DATA_DIR/SHD/shd_train.h5 and DATA_DIR/SHD/shd_test.h5 (the unzipped originals:
                spikes/times [s], spikes/units, labels, extra/keys, extra/speaker)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from spikeship.errors import SpikeshipError


@dataclass(frozen=True)
class TonicSet:
    """One tonic data set: its tonic class, its files per split, a one-line layout and the check of its
    files (``check(spec, data_dir, path of the split)`` raises a one-line ``SpikeshipError``)."""

    name: str
    tonic_class: str  # also the folder tonic expects under DATA_DIR
    split_paths: tuple[tuple[str, str], ...]  # (split, path under DATA_DIR/<tonic_class>)
    layout: str
    check: Callable[["TonicSet", object, Path], None]

    def split_path(self, split: str) -> str:
        return dict(self.split_paths)[split]


NMNIST_EVENT_BYTES = 5
_SHD_DATASETS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


def _fail(spec: TonicSet, data_dir, why: str) -> SpikeshipError:
    return SpikeshipError(f"{spec.name}: {why} in {data_dir}; expected layout {spec.layout} "
                          "(nothing is downloaded)")


def resolve_root(spec: TonicSet, data_dir) -> Path:
    """The folder to give tonic as ``save_to``: DATA_DIR, or its parent if DATA_DIR is the
    data set's own folder (``.../NMNIST``)."""
    if data_dir is None:
        raise SpikeshipError(f"{spec.name} needs --data-dir DIR with the layout {spec.layout} "
                             "(nothing is downloaded)")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise _fail(spec, data_dir, "no such folder")
    if not (root / spec.tonic_class).is_dir() and root.name == spec.tonic_class:
        return root.parent
    return root


def check_folder(name: str, data_dir, split: str) -> Path:
    """Check that the split's files are where tonic will read them; return tonic's ``save_to``.

    Raises SpikeshipError with one line naming the expected layout otherwise.
    """
    spec = TONIC_SETS[name]
    if split not in dict(spec.split_paths):
        raise SpikeshipError(f"{name}: split must be one of {sorted(dict(spec.split_paths))}")
    root = resolve_root(spec, data_dir)
    spec.check(spec, data_dir, root / spec.tonic_class / spec.split_path(split))
    return root


def _check_nmnist(spec: TonicSet, data_dir, folder: Path) -> None:
    if not folder.is_dir():
        raise _fail(spec, data_dir, f"missing {folder.name}/")
    files = sorted(folder.glob("**/*.bin"))
    if not files:
        raise _fail(spec, data_dir, f"no .bin files under {folder.name}/")
    for f in files:  # tonic takes the label from the last character of the folder name
        if f.parent.parent != folder or not re.fullmatch(r"[0-9]", f.parent.name):
            raise _fail(spec, data_dir, f"{f.relative_to(folder.parent)} is not in a digit folder")
        size = f.stat().st_size
        if size % NMNIST_EVENT_BYTES:
            raise _fail(spec, data_dir, f"{f.relative_to(folder.parent)} holds {size} bytes, not whole "
                                        f"{NMNIST_EVENT_BYTES}-byte N-MNIST events")


def _check_dvsgesture(spec: TonicSet, data_dir, folder: Path) -> None:
    if not folder.is_dir():
        raise _fail(spec, data_dir, f"missing {folder.name}/")
    files = sorted(folder.glob("**/*.npy"))
    if not files:
        raise _fail(spec, data_dir, f"no .npy files under {folder.name}/")
    for f in files:  # tonic parses user<NN>_<lighting> and takes the label from the file name
        if (f.parent.parent != folder or not re.fullmatch(r"user\d+_.+", f.parent.name)
                or not re.fullmatch(r"(10|[0-9])\.npy", f.name)):
            raise _fail(spec, data_dir, f"{f.relative_to(folder.parent)} does not fit the layout")
    for d in folder.iterdir():  # tonic also walks folders without .npy files
        if d.is_dir() and not re.fullmatch(r"user\d+_.+", d.name):
            raise _fail(spec, data_dir, f"unexpected folder {folder.name}/{d.name}")
    for f in files:  # the header only (memory-mapped): tonic expects an N x 4 integer array (x, y, p, t)
        try:
            a = np.load(f, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise _fail(spec, data_dir, f"{f.relative_to(folder.parent)} is not a readable .npy array "
                                        f"({str(err).splitlines()[0]})") from None
        if a.ndim != 2 or a.shape[1] != 4 or a.dtype.kind not in "iuf":
            raise _fail(spec, data_dir, f"{f.relative_to(folder.parent)} holds a {a.dtype} array of shape "
                                        f"{a.shape}, not N x 4 events (x, y, p, t)")


def _check_shd(spec: TonicSet, data_dir, path: Path) -> None:
    import h5py

    if not path.is_file():
        raise _fail(spec, data_dir, f"missing {path.name}")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in _SHD_DATASETS if k not in f]
            n_labels, n_times = len(f["labels"]) if "labels" in f else 0, 0
            if not missing:
                n_times = len(f["spikes/times"])
    except OSError as err:
        raise _fail(spec, data_dir, f"{path.name} is not a readable HDF5 file ({err})") from None
    if missing:
        raise _fail(spec, data_dir, f"{path.name} lacks {', '.join(missing)}")
    if n_labels == 0 or n_times != n_labels:
        raise _fail(spec, data_dir, f"{path.name} holds {n_labels} labels for {n_times} samples")


TONIC_SETS = {
    s.name: s
    for s in (
        TonicSet("nmnist", "NMNIST", (("train", "Train"), ("test", "Test")),
                 "DATA_DIR/NMNIST/{Train,Test}/<digit 0-9>/*.bin", _check_nmnist),
        TonicSet("dvsgesture", "DVSGesture",
                 (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")),
                 "DATA_DIR/DVSGesture/{ibmGestureTrain,ibmGestureTest}/user<NN>_<lighting>/<label>.npy",
                 _check_dvsgesture),
        TonicSet("shd", "SHD", (("train", "shd_train.h5"), ("test", "shd_test.h5")),
                 "DATA_DIR/SHD/{shd_train.h5,shd_test.h5}", _check_shd),
    )
}


def _offline(tonic_cls):
    """tonic's class with our existence check (done before) and a download that refuses."""

    def _check_exists(self) -> bool:
        return True

    def download(self) -> None:
        raise SpikeshipError(f"{tonic_cls.__name__}: refusing to download; put the files in "
                             f"{self.location_on_system}")

    # Same class name: tonic reads from save_to/<class name>.
    return type(tonic_cls.__name__, (tonic_cls,),
                {"_check_exists": _check_exists, "download": download, "__module__": __name__})


def open_tonic_set(name: str, data_dir, split: str = "train", transform=None):
    """tonic's own data set object for ``name`` read from ``data_dir`` (checked first).

    ``ds[i]`` gives (events, label) exactly as tonic reads them; ``ds.sensor_size``,
    ``ds.ordering`` and ``ds.classes`` are tonic's.
    """
    if name not in TONIC_SETS:
        raise SpikeshipError(f"unknown tonic data set {name!r}; known: {', '.join(TONIC_SETS)}")
    root = check_folder(name, data_dir, split)
    import tonic.datasets

    cls = _offline(getattr(tonic.datasets, TONIC_SETS[name].tonic_class))
    try:
        ds = cls(save_to=str(root), train=(split == "train"), transform=transform)
    except (OSError, ValueError, KeyError) as err:  # malformed files tonic could not parse
        raise _fail(TONIC_SETS[name], data_dir, f"tonic could not read the files ({err})") from None
    _sort_by_path(ds)
    return ds


def _sort_by_path(ds) -> None:
    """Put samples in path order: tonic's DVSGesture keeps the file system's listing order."""
    paths = ds.data
    if not paths or not isinstance(paths[0], str):
        return
    order = sorted(range(len(paths)), key=paths.__getitem__)
    for attr in ("data", "targets", "users", "lighting"):
        values = getattr(ds, attr, None)
        if isinstance(values, list) and len(values) == len(order):
            setattr(ds, attr, [values[i] for i in order])


def class_names(name: str, ds) -> tuple[str, ...]:
    """Human-readable class names; SHD stores them as bytes in the file."""
    names = getattr(ds, "classes", None)
    if names is None or len(names) == 0:
        return tuple(str(c) for c in sorted(set(int(t) for t in ds.targets)))
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
