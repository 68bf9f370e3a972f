"""tonic data sets from a local folder: real on-disk formats, read by tonic, never downloaded."""

import numpy as np
import pytest
from tonic_files import forbid_downloads, write_dvsgesture_npy, write_nmnist_bin, write_shd_h5

from spikeship.errors import SpikeshipError
from spikeship.train.tonic_sets import TONIC_SETS, class_names, open_tonic_set


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    return forbid_downloads(monkeypatch)


def make_nmnist(root):
    write_nmnist_bin(root / "NMNIST/Train/3/00001.bin", [1, 33, 0], [2, 0, 33], [5, 70_000, 131_071], [1, 0, 1])
    write_nmnist_bin(root / "NMNIST/Train/7/00002.bin", [4], [5], [8_388_607], [0])
    write_nmnist_bin(root / "NMNIST/Test/0/00003.bin", [10, 11], [12, 13], [100, 200], [0, 1])


def make_dvsgesture(root):
    base = root / "DVSGesture/ibmGestureTrain"
    write_dvsgesture_npy(base / "user01_fluorescent/0.npy", [0, 127, 64], [1, 126, 64], [1, 0, 1], [0, 3, 1500])
    write_dvsgesture_npy(base / "user02_led/10.npy", [5], [6], [0], [42])
    write_dvsgesture_npy(root / "DVSGesture/ibmGestureTest/user24_natural/4.npy", [9], [8], [1], [7])


def make_shd(root):
    write_shd_h5(root / "SHD/shd_train.h5", [[0.0, 0.25, 0.5], [0.125]], [[0, 699, 3], [42]], [5, 19])
    write_shd_h5(root / "SHD/shd_test.h5", [[0.75]], [[1]], [2])


def test_nmnist_bin_files_read_through_tonic_exactly(tmp_path):
    make_nmnist(tmp_path)
    ds = open_tonic_set("nmnist", tmp_path, "train")
    assert type(ds).__mro__[1].__module__ == "tonic.datasets.nmnist" and len(ds) == 2
    events, label = ds[0]
    assert label == 3 and events.dtype.names == ("x", "y", "t", "p")
    assert events["x"].tolist() == [1, 33, 0] and events["y"].tolist() == [2, 0, 33]
    assert events["t"].tolist() == [5, 70_000, 131_071] and events["p"].tolist() == [1, 0, 1]
    events, label = ds[1]
    assert (label, events["t"].tolist(), events["p"].tolist()) == (7, [8_388_607], [0])
    test = open_tonic_set("nmnist", tmp_path, "test")
    assert len(test) == 1 and test[0][1] == 0 and test[0][0]["x"].tolist() == [10, 11]
    assert ds.sensor_size == (34, 34, 2) and class_names("nmnist", ds)[3] == "3 - three"


def test_data_dir_may_name_the_dataset_folder_itself(tmp_path):
    make_nmnist(tmp_path)
    assert len(open_tonic_set("nmnist", tmp_path / "NMNIST", "train")) == 2


def test_dvsgesture_npy_files_read_through_tonic_exactly(tmp_path):
    make_dvsgesture(tmp_path)
    ds = open_tonic_set("dvsgesture", tmp_path, "train")
    assert len(ds) == 2 and ds.sensor_size == (128, 128, 2)
    events, label = ds[0]
    assert label == 0
    assert events["x"].tolist() == [0, 127, 64] and events["y"].tolist() == [1, 126, 64]
    assert events["p"].tolist() == [True, False, True]
    assert events["t"].tolist() == [0, 3_000, 1_500_000]  # ms on disk, us from tonic
    assert ds[1][1] == 10 and ds.users == [1, 2] and ds.lighting == ["fluorescent", "led"]
    test = open_tonic_set("dvsgesture", tmp_path, "test")
    assert len(test) == 1 and test[0][1] == 4 and test[0][0]["t"].tolist() == [7_000]
    assert class_names("dvsgesture", ds)[10] == "Other gestures"


def test_shd_h5_read_through_tonic_exactly(tmp_path):
    make_shd(tmp_path)
    ds = open_tonic_set("shd", tmp_path, "train")
    assert len(ds) == 2 and ds.sensor_size == (700, 1, 1)
    events, label = ds[0]
    assert label == 5 and events.dtype.names == ("t", "x", "p")
    assert events["t"].tolist() == [0, 250_000, 500_000] and events["x"].tolist() == [0, 699, 3]
    events, label = ds[1]
    assert (label, events["t"].tolist(), events["x"].tolist()) == (19, [125_000], [42])
    names = class_names("shd", ds)
    assert len(names) == 20 and names[0] == "word-0"
    assert open_tonic_set("shd", tmp_path, "test")[0][1] == 2


@pytest.mark.parametrize("name", sorted(TONIC_SETS))
def test_missing_folder_is_one_clear_line(tmp_path, name, no_network):
    with pytest.raises(SpikeshipError) as err:
        open_tonic_set(name, tmp_path / "nowhere", "train")
    message = str(err.value)
    assert "\n" not in message and "no such folder" in message
    assert TONIC_SETS[name].layout in message and "nothing is downloaded" in message
    assert no_network == []


@pytest.mark.parametrize("name", sorted(TONIC_SETS))
def test_empty_folder_is_one_clear_line(tmp_path, name, no_network):
    with pytest.raises(SpikeshipError) as err:
        open_tonic_set(name, tmp_path, "train")
    assert "missing" in str(err.value) and TONIC_SETS[name].layout in str(err.value)
    (tmp_path / TONIC_SETS[name].tonic_class / TONIC_SETS[name].split_path("train")).mkdir(parents=True)
    with pytest.raises(SpikeshipError) as err:  # the split folder exists but holds nothing
        open_tonic_set(name, tmp_path, "train")
    assert TONIC_SETS[name].layout in str(err.value) and "\n" not in str(err.value)
    assert no_network == []


@pytest.mark.parametrize("name", sorted(TONIC_SETS))
def test_no_data_dir_names_the_layout(name):
    with pytest.raises(SpikeshipError, match="needs --data-dir"):
        open_tonic_set(name, None, "train")


def test_misplaced_files_are_refused(tmp_path):
    write_nmnist_bin(tmp_path / "NMNIST/Train/00001.bin", [1], [1], [1], [1])  # no digit folder
    with pytest.raises(SpikeshipError, match="not in a digit folder"):
        open_tonic_set("nmnist", tmp_path, "train")
    write_dvsgesture_npy(tmp_path / "DVSGesture/ibmGestureTrain/alice/0.npy", [1], [1], [1], [1])
    with pytest.raises(SpikeshipError, match="does not fit the layout"):
        open_tonic_set("dvsgesture", tmp_path, "train")


def test_shd_without_the_expected_datasets_is_refused(tmp_path):
    import h5py

    (tmp_path / "SHD").mkdir()
    with h5py.File(tmp_path / "SHD/shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(3, dtype=np.uint8))
    with pytest.raises(SpikeshipError, match="lacks spikes/times, spikes/units, extra/keys"):
        open_tonic_set("shd", tmp_path, "train")
    (tmp_path / "SHD/shd_train.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(SpikeshipError, match="not a readable HDF5 file"):
        open_tonic_set("shd", tmp_path, "train")


def test_plain_tonic_would_download_these_files(tmp_path, no_network):
    """Why the folder check exists: tonic's own check wants the archive and 10,000 files."""
    import tonic.datasets

    make_nmnist(tmp_path)
    with pytest.raises(AssertionError, match="a download was attempted"):
        tonic.datasets.NMNIST(save_to=str(tmp_path), train=True)
    assert len(no_network) == 1


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(SpikeshipError, match="known: nmnist, dvsgesture, shd"):
        open_tonic_set("cifar10dvs", tmp_path, "train")
