"""The one data interface: binary frames (N, C, H, W, T) for every data set."""

import numpy as np
import pytest
import torch
from tonic_files import forbid_downloads, write_dvsgesture_npy, write_nmnist_bin, write_shd_h5

from spikeship.errors import SpikeshipError
from spikeship.train import data
from spikeship.train.data import frame_events, load_dataset
from spikeship.train.datasets import DATASETS
from spikeship.train.event_digits import EVENT_DTYPE


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    return forbid_downloads(monkeypatch)


def events_of(rows):
    ev = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (x, y, t, p) in enumerate(rows):
        ev[i] = (x, y, t, p)
    return ev


def test_frame_bins_are_fixed_windows_from_zero_and_keep_the_last_timestamp():
    window, steps = 100, 4
    ev = events_of([(1, 2, 0, 1), (1, 2, 99, 1),  # two events, one pixel, one bin -> one spike
                    (3, 4, 100, 0), (5, 6, 399, 1),  # bin 1; the last timestamp of the last bin
                    (7, 8, 400, 1)])  # past T * window: dropped
    frames = frame_events(ev, (34, 34, 2), steps, window)
    assert frames.shape == (2, 34, 34, 4) and frames.dtype == np.uint8
    expected = np.zeros_like(frames)
    expected[1, 2, 1, 0] = expected[0, 4, 3, 1] = expected[1, 6, 5, 3] = 1
    assert np.array_equal(frames, expected)
    assert frame_events(ev[:0], (34, 34, 2), steps, window).shape == (2, 34, 34, 4)


def test_nmnist_folder_frames_exactly(tmp_path):
    write_nmnist_bin(tmp_path / "NMNIST/Train/3/a.bin", [1, 33, 0, 1], [2, 0, 33, 2],
                     [0, 70_000, 131_071, 10], [1, 0, 1, 1])
    write_nmnist_bin(tmp_path / "NMNIST/Train/7/b.bin", [4], [5], [399], [0])
    ds = load_dataset("nmnist", tmp_path, time_steps=4, split="train")
    assert len(ds) == 2 and ds.input_shape == (2, 34, 34) and ds.sensor_size == (34, 34, 2)
    assert ds.frames.shape == (2, 2, 34, 34, 4) and ds.frames.dtype == torch.float32
    assert ds.labels.tolist() == [3, 7] and ds.class_names[7] == "7 - seven"
    assert ds.window_us is None  # each sample's span: 131072 us -> 32768 us bins, 400 -> 100
    expected = torch.zeros(2, 2, 34, 34, 4)
    expected[0, 1, 2, 1, 0] = 1  # t=0 and t=10 in one bin, clipped to one spike
    expected[0, 0, 0, 33, 2] = 1  # 70000 // 32768 = 2
    expected[0, 1, 33, 0, 3] = 1  # the very last timestamp is kept
    expected[1, 0, 5, 4, 3] = 1
    assert torch.equal(ds.frames, expected)
    frame, label = ds[1]
    assert label == 7 and torch.equal(frame, expected[1])


def test_dvsgesture_downsampled_frames_exactly(tmp_path):
    base = tmp_path / "DVSGesture/ibmGestureTest"
    write_dvsgesture_npy(base / "user24_led/5.npy", [0, 127, 64, 3], [1, 126, 64, 2], [1, 0, 1, 0],
                         [0, 3, 7, 7])
    ds = load_dataset("dvsgesture", tmp_path, time_steps=2, split="test", downsample=4)
    assert ds.input_shape == (2, 32, 32) and ds.sensor_size == (32, 32, 2)
    expected = torch.zeros(1, 2, 32, 32, 2)
    expected[0, 1, 0, 0, 0] = 1  # (0, 1) at 0 ms
    expected[0, 0, 31, 31, 0] = 1  # (127, 126) at 3 ms; bins of 4000 us
    expected[0, 1, 16, 16, 1] = 1  # (64, 64) at 7 ms
    expected[0, 0, 0, 0, 1] = 1  # (3, 2) at 7 ms
    assert torch.equal(ds.frames, expected) and ds.labels.tolist() == [5]
    with pytest.raises(SpikeshipError, match="cannot be downsampled by 3"):
        load_dataset("dvsgesture", tmp_path, time_steps=2, split="test", downsample=3)


def test_shd_frames_are_channels_by_one_by_one(tmp_path):
    write_shd_h5(tmp_path / "SHD/shd_train.h5", [[0.0, 0.25, 0.5], [0.5]], [[0, 699, 3], [42]], [5, 19])
    ds = load_dataset("shd", tmp_path, time_steps=4, split="train", duration_us=1_000_000)
    assert ds.input_shape == (700, 1, 1) and ds.frames.shape == (2, 700, 1, 1, 4)
    assert ds.window_us == 250_000 and ds.labels.tolist() == [5, 19] and len(ds.class_names) == 20
    expected = torch.zeros(2, 700, 1, 1, 4)
    expected[0, 0, 0, 0, 0] = expected[0, 699, 0, 0, 1] = expected[0, 3, 0, 0, 2] = 1
    expected[1, 42, 0, 0, 2] = 1
    assert torch.equal(ds.frames, expected)


def test_event_digits_shapes_binary_balance_and_determinism():
    test = load_dataset("event-digits", time_steps=8, split="test")
    assert len(test) == 359 and test.frames.shape == (359, 2, 34, 34, 8)
    assert test.window_us == 37_500 and test.class_names == tuple("0123456789")
    assert set(torch.unique(test.frames).tolist()) == {0.0, 1.0}
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    spikes_per_sample = test.frames.sum(dim=(1, 2, 3, 4))
    assert spikes_per_sample.min() > 500 and spikes_per_sample.max() < 5_000
    again = load_dataset("event-digits", time_steps=8, split="test")
    assert torch.equal(again.frames, test.frames) and torch.equal(again.labels, test.labels)


def test_event_digits_seeds_epochs_and_subsets():
    base = load_dataset("event-digits", time_steps=4, max_samples=20, seed=0)
    assert len(base) == 20 and np.array_equal(
        base.indices, load_dataset("event-digits", time_steps=4, max_samples=20, seed=5).indices)
    same = load_dataset("event-digits", time_steps=4, max_samples=20, seed=0, epoch=9)
    assert torch.equal(base.frames, same.frames)  # no augmentation: the epoch does not matter
    aug0 = load_dataset("event-digits", time_steps=4, max_samples=20, augment=True, epoch=0)
    aug1 = load_dataset("event-digits", time_steps=4, max_samples=20, augment=True, epoch=1)
    assert torch.equal(aug0.labels, base.labels)
    assert not torch.equal(aug0.frames, base.frames) and not torch.equal(aug0.frames, aug1.frames)
    assert torch.equal(aug0.frames, load_dataset("event-digits", time_steps=4, max_samples=20,
                                                 augment=True, epoch=0).frames)


def test_works_with_a_torch_dataloader():
    ds = load_dataset("event-digits", time_steps=4, max_samples=10)
    batch, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 2, 34, 34, 4) and batch.dtype == torch.float32
    assert torch.equal(labels, ds.labels[:4]) and torch.equal(batch, ds.frames[:4])


def test_tonic_augmentation_is_seeded(tmp_path):
    write_nmnist_bin(tmp_path / "NMNIST/Train/1/a.bin", np.arange(20) + 5, np.arange(20) + 5,
                     np.arange(20) * 5_000, np.arange(20) % 2)
    kw = dict(time_steps=4, split="train", augment=True)
    a = load_dataset("nmnist", tmp_path, seed=1, **kw)
    assert torch.equal(a.frames, load_dataset("nmnist", tmp_path, seed=1, **kw).frames)
    assert a.frames.sum() > 0


def test_augment_events_shifts_the_whole_sample_and_jitters_time():
    ev = events_of([(x, 33 - x, 10_000 * x, x % 2) for x in range(34)])  # 10 ms apart
    shifts = set()
    for seed in range(10):
        out = data.augment_events(ev.copy(), (34, 34, 2), np.random.default_rng(seed))
        assert np.all(np.diff(out["t"]) >= 0) and 30 <= len(out) <= 34
        source = ev[np.round(out["t"] / 10_000).astype(int)]  # 1 ms jitter keeps the order
        assert 0 < np.abs(out["t"] - source["t"]).max() < 5_000
        moved = set(zip((out["x"].astype(int) - source["x"]).tolist(),
                        (out["y"].astype(int) - source["y"]).tolist()))
        assert len(moved) == 1  # one shift for the whole sample
        shift = moved.pop()
        assert max(abs(shift[0]), abs(shift[1])) <= data.AUGMENT_SHIFT_PX
        shifts.add(shift)
    assert len(shifts) > 1


def test_unknown_name_and_bad_arguments_are_one_line():
    with pytest.raises(SpikeshipError, match="known: " + ", ".join(DATASETS)):
        load_dataset("mnist")
    with pytest.raises(SpikeshipError, match="takes no --data-dir"):
        load_dataset("event-digits", data_dir="/tmp")
    with pytest.raises(SpikeshipError, match="positive integer"):
        load_dataset("event-digits", time_steps=0)
    with pytest.raises(SpikeshipError, match="split must be"):
        load_dataset("event-digits", split="valid")


@pytest.mark.parametrize("name", ["nmnist", "dvsgesture", "shd"])
def test_missing_folder_through_the_interface(tmp_path, name, no_network):
    with pytest.raises(SpikeshipError, match="expected layout"):
        load_dataset(name, tmp_path / "absent", time_steps=4)
    assert no_network == []


def test_shared_cli_flags(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    data.add_data_arguments(parser, default=None)
    args = parser.parse_args(["--dataset", "shd", "--data-dir", "/d", "--sensor-downsample", "2"])
    assert (args.dataset, args.data_dir, args.sensor_downsample) == ("shd", "/d", 2)
    assert parser.parse_args([]).dataset is None and parser.parse_args([]).sensor_downsample is None


class _Net:
    """What ``run_data`` reads of a network: its model card."""

    def __init__(self, card):
        self.model_card = card
        self.dataset = card.get("dataset")


def test_runs_take_the_data_set_and_folder_the_model_card_names():
    trained = _Net({"dataset": "nmnist", "config": {"data_dir": "/data", "sensor_downsample": 2}})
    assert data.run_data(trained, None, None, None) == ("nmnist", "/data", 2)
    assert data.run_data(trained, None, "/other", 1) == ("nmnist", "/other", 1)
    assert data.run_data(trained, "event-digits", None, None) == ("event-digits", None, 1)  # not nmnist's folder
    with pytest.raises(SpikeshipError, match="names no data set; give --dataset NAME"):
        data.run_data(_Net({}), None, None, None)
