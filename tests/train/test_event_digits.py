"""event-digits: a simulated DVS watching sklearn's digits move in three saccades."""

import numpy as np
import pytest

from spikeship.train import event_digits as ed


@pytest.fixture(scope="module")
def digits():
    return ed.load_digits()


def test_dvs_fires_at_interpolated_threshold_crossings():
    # one pixel; log intensity per step edge, threshold 0.5, steps of 1000 us (dyadic: exact)
    logi = np.array([0.0, 0.25, 1.25, 1.25, 0.25], dtype=np.float32).reshape(1, 5, 1, 1)
    b, x, y, t, p = ed._dvs_events(logi, np.full((1, 1), 0.5, np.float32), 1000)
    assert t.tolist() == [1250.0, 1750.0, 3750.0]  # two ON crossings in step 2, one OFF in step 4
    assert p.tolist() == [1, 1, 0] and b.tolist() == [0, 0, 0] and x.tolist() == [0, 0, 0]


def test_blank_or_static_scene_gives_no_events(digits):
    images, _ = digits
    quiet = ed.EventDigitsConfig(noise_rate_hz=0.0)
    blank = np.zeros((2, 8, 8), dtype=np.float32)
    assert [len(e) for e in ed.make_events(blank, [0, 1], cfg=quiet)] == [0, 0]
    still = ed.EventDigitsConfig(noise_rate_hz=0.0, saccade_px=0.0)
    assert [len(e) for e in ed.make_events(images, [0, 1], cfg=still)] == [0, 0]
    moving = ed.make_events(images, [0, 1], cfg=quiet)
    assert all(len(e) > 1000 for e in moving)


def test_events_are_tonic_style_and_in_range(digits):
    images, _ = digits
    events = ed.make_events(images, np.arange(0, 1797, 90), seed=3)
    for ev in events:
        assert ev.dtype.names == ("x", "y", "t", "p") and ev.dtype["t"] == np.int64
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < ed.DURATION_US
        assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
        assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    counts = np.array([len(e) for e in events])
    on_fraction = np.array([e["p"].mean() for e in events])
    # N-MNIST averages about 4,000 events per sample; ON and OFF roughly balance over a closed path
    assert 2_000 < counts.min() and counts.max() < 10_000, counts
    assert np.all((on_fraction > 0.4) & (on_fraction < 0.6)), on_fraction


def test_events_move_through_all_three_saccades(digits):
    images, _ = digits
    ev = ed.make_events(images, [10])[0]
    per_saccade = np.bincount(ev["t"] // 100_000, minlength=3)
    assert per_saccade.shape == (3,) and np.all(per_saccade > 0.2 * len(ev))


def test_same_seed_same_events_and_samples_do_not_depend_on_their_batch(digits):
    images, _ = digits
    a = ed.make_events(images, [5, 17, 300], seed=1)
    b = ed.make_events(images, [5, 17, 300], seed=1)
    alone = ed.make_events(images, [17], seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(a[1], alone[0])
    other = ed.make_events(images, [5, 17, 300], seed=2)
    assert not any(np.array_equal(x, y) for x, y in zip(a, other))


def test_augmentation_is_reproducible_and_differs_per_epoch_and_seed(digits):
    images, _ = digits
    idx = [5, 17]
    e0 = ed.make_events(images, idx, seed=1, augment=True, epoch=0)
    assert all(np.array_equal(x, y) for x, y in
               zip(e0, ed.make_events(images, idx, seed=1, augment=True, epoch=0)))
    e1 = ed.make_events(images, idx, seed=1, augment=True, epoch=1)
    s2 = ed.make_events(images, idx, seed=2, augment=True, epoch=0)
    fixed = ed.make_events(images, idx, seed=1)
    for group in (e1, s2, fixed):
        assert not any(np.array_equal(x, y) for x, y in zip(e0, group))


def test_augmented_saccades_stay_on_the_sensor():
    cfg = ed.EventDigitsConfig()
    limit = 34 - 8 * cfg.scale
    for seed in range(50):
        v = ed.saccade_vertices(cfg, np.random.default_rng(seed))
        assert v.shape == (4, 2) and v.min() >= 0 and v.max() <= limit
        assert np.array_equal(v[0], v[3])
    fixed = ed.saccade_vertices(cfg, None)
    assert fixed.tolist() == [[2.0, 2.0], [5.0, 8.0], [8.0, 2.0], [2.0, 2.0]]


def test_split_is_fixed_stratified_and_disjoint(digits):
    _, labels = digits
    train, test = ed.split_indices(labels, "train"), ed.split_indices(labels, "test")
    assert len(train) + len(test) == 1797 and not set(train) & set(test)
    assert len(test) == sum(int(round(0.2 * n)) for n in np.bincount(labels))
    ratio = np.bincount(labels[test], minlength=10) / np.bincount(labels, minlength=10)
    assert np.all(np.abs(ratio - 0.2) < 0.01), ratio
    assert np.array_equal(ed.split_indices(labels, "test"), test)
    assert (ed.split_size("train"), ed.split_size("test")) == (len(train), len(test))


def test_dataset_object_looks_like_tonic():
    ds = ed.EventDigits("test", seed=0, subset=[0, 1, 2])
    assert ds.sensor_size == (34, 34, 2) and ds.ordering == "xytp" and ds.classes[9] == "9"
    events, label = ds[1]
    _, labels = ed.load_digits()
    assert label == labels[ds.indices[1]] and len(ds) == 3 and events.dtype == ed.EVENT_DTYPE


def test_bad_simulation_config_is_refused():
    with pytest.raises(ValueError, match="step_us"):
        ed.EventDigitsConfig(step_us=7_000)
    with pytest.raises(ValueError, match="exceed the sensor"):
        ed.EventDigitsConfig(saccade_px=12.0)
