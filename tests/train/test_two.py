"""TWO: the update rule against hand-computed numbers, sum a_t = T, decoding and the deployed integers."""

import numpy as np
import pytest
import torch

from spikeship.train import two


def test_initial_weights_are_one():
    a = two.initial_weights(5)
    assert torch.equal(a, torch.ones(5, dtype=torch.float64))


def test_update_equals_hand_computed_example_exactly():
    # acc = [1/4, 1/2, 3/4, 1/2], mean 1/2 -> new = [1/2, 1, 3/2, 1]; beta 1/4: a = 3/4 * 1 + 1/4 * new
    a = two.update_weights(torch.ones(4), torch.tensor([0.25, 0.5, 0.75, 0.5]), beta=0.25)
    assert a.tolist() == [0.875, 1.0, 1.125, 1.0]
    # second step from there, acc = [0, 1/4, 1/2, 1/4] (mean 1/4) -> new = [0, 1, 2, 1]
    a = two.update_weights(a, torch.tensor([0.0, 0.25, 0.5, 0.25]), beta=0.25)
    assert a.tolist() == [0.65625, 1.0, 1.34375, 1.0]


def test_update_with_the_authors_beta():
    a = two.update_weights(torch.ones(4), torch.tensor([0.2, 0.4, 0.6, 0.8]), beta=0.3)
    assert torch.allclose(a, torch.tensor([0.82, 0.94, 1.06, 1.18], dtype=torch.float64), atol=1e-15)


def test_sum_is_kept_at_T_over_many_updates():
    gen = torch.Generator().manual_seed(0)
    a = two.initial_weights(16)
    for _ in range(50):
        a = two.update_weights(a, torch.rand(16, generator=gen, dtype=torch.float64), beta=0.3)
        assert abs(float(a.sum()) - 16.0) < 1e-12
        assert float(a.min()) >= 0.0


def test_no_correct_step_leaves_weights_unchanged():
    a = torch.tensor([0.5, 1.5])
    assert two.update_weights(a, torch.zeros(2), 0.3).tolist() == [0.5, 1.5]


def test_step_correct_counts_per_step_argmax():
    # N=2, classes=3, T=2; sample 0 label 2, sample 1 label 0
    readout = torch.tensor([[[0.0, 1.0], [0.5, 0.0], [1.0, 0.0]],
                            [[2.0, 0.0], [1.0, 3.0], [0.0, 0.0]]])
    assert two.step_correct(readout, torch.tensor([2, 0])).tolist() == [2, 0]
    assert two.step_correct(readout, torch.tensor([1, 1])).tolist() == [0, 1]


def test_decode_weights_each_step_and_no_gradient_into_a():
    readout = torch.tensor([[[1.0, 2.0, 4.0, 1.0]]], requires_grad=True)  # N=1, C=1, T=4
    a = torch.tensor([0.0, 1.0, 2.0, 1.0], dtype=torch.float64)
    y = two.decode(readout, a)
    assert y.tolist() == [[(0 * 1 + 1 * 2 + 2 * 4 + 1 * 1) / 4]]
    y.sum().backward()
    assert readout.grad.tolist() == [[[0.0, 0.25, 0.5, 0.25]]]  # a_t scales each step's gradient
    mean = two.decode(readout, two.initial_weights(4))
    assert torch.allclose(mean, readout.mean(-1))


def test_should_update_respects_warmup_and_mean_decode():
    cfg = two.TWOConfig(time_steps=8, warmup=3)
    assert [two.should_update(e, cfg) for e in range(5)] == [False, False, False, True, True]
    cfg0 = two.TWOConfig(time_steps=8, warmup=0)
    assert [two.should_update(e, cfg0) for e in range(3)] == [False, True, True]  # epoch 0 has no statistics
    assert not any(two.should_update(e, two.TWOConfig(8, decode="mean")) for e in range(10))


def test_quantize_two_weights():
    q = two.quantize_two_weights(torch.tensor([0.875, 1.0, 1.125, 1.0]), num_spiking_layers=1)
    assert q.dtype == np.int64
    assert q.tolist() == [0, 64, 72, 64]
    q = two.quantize_two_weights([0.3, 0.9, 1.2, 1.6], num_spiking_layers=2)
    assert q.tolist() == [0, 0, 77, 102]  # round(76.8) = 77, round(102.4) = 102
    with pytest.raises(ValueError, match="larger than the number of spiking layers"):
        two.quantize_two_weights([1.0, 1.0], num_spiking_layers=2)


def test_config_validation():
    with pytest.raises(ValueError, match="decode"):
        two.TWOConfig(4, decode="max")
    with pytest.raises(ValueError, match="beta"):
        two.TWOConfig(4, beta=1.5)


def test_training_decodes_with_the_weights_the_chip_applies():
    """Float decode with deployed_weights = integer deploy decode, sample for sample (issue: a conv network's
    deployed accuracy differed from the float one when the float decode kept the pipeline-fill weights)."""
    gen = torch.Generator().manual_seed(1)
    a = two.initial_weights(10)
    for _ in range(5):
        a = two.update_weights(a, torch.rand(10, generator=gen, dtype=torch.float64), beta=0.3)
    dec = two.deployed_weights(a, 3)
    assert dec[:3].tolist() == [0, 0, 0] and torch.equal(dec * 64, torch.round(a * 64) * (torch.arange(10) >= 3))
    readout = torch.randint(-300, 300, (500, 4, 10), generator=gen).double() / 32  # readouts are k/32
    readout[..., :3] = torch.randint(-9, 9, (500, 4, 3), generator=gen).double()  # whatever the fill holds
    from spikeship.train.model import decode_integer, readout_integers

    float_pred = two.decode(readout, dec).argmax(1)
    int_pred = decode_integer(readout_integers(readout), torch.from_numpy(two.quantize_two_weights(a, 3))).argmax(1)
    assert torch.equal(float_pred, int_pred)
    assert not torch.equal(two.decode(readout, a).argmax(1), int_pred)  # the float a_t would differ here
