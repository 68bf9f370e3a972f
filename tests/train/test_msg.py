"""MSG: the mask statistics, p = 0 equals plain SG exactly, and the forward is slayer's bit for bit."""

import math

import pytest
import torch
from lava.lib.dl import slayer

from spikeship.train.msg import MSGConv, MSGDense, MSGNeuron, MSGRecurrent, SurrogateConfig, masked_derivative, \
    piecewise_linear, arctan, surrogate_derivative

PARAMS = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3.0,
          "requires_grad": False, "graded_spike": False}


def _spikes(shape, p=0.3, seed=0):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _pair_dense(surrogate, seed=0):
    torch.manual_seed(seed)
    ref = slayer.block.cuba.Dense(PARAMS, 40, 30, weight_scale=4, weight_norm=False, delay_shift=True)
    msg = MSGDense(PARAMS, 40, 30, weight_scale=4, weight_norm=False, delay_shift=True, surrogate=surrogate)
    msg.synapse.weight.data.copy_(ref.synapse.weight.data)
    return ref, msg


def test_surrogates_match_their_formulas():
    x = torch.tensor([-1.0, -0.5, -0.25, 0.0, 0.1, 0.5, 2.0])
    assert torch.equal(piecewise_linear(x, 2.0), torch.tensor([0.0, 0.0, 1.0, 2.0, 1.6, 0.0, 0.0]))
    assert torch.allclose(arctan(x, 2.0), 2.0 / (1 + (math.pi * x) ** 2))
    # relative to the threshold: x = (V - V_th) / V_th, and the chain-rule factor 1 / V_th
    v = torch.tensor([1.25, 1.5, 2.0])
    cfg = SurrogateConfig("piecewise", 2.0, 0.0)
    assert torch.allclose(surrogate_derivative(v, 1.25, cfg), torch.tensor([2.0, 2.0 - 4 * 0.2, 0.0]) / 1.25)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_fraction_of_zeroed_entries_is_p(p):
    torch.manual_seed(1)
    v = torch.full((200_000,), 1.3)  # inside the piecewise support: every unmasked entry is non-zero
    d = masked_derivative(v, 1.25, SurrogateConfig("piecewise", 2.0, p))
    n = v.numel()
    zeroed = float((d == 0).sum()) / n
    assert abs(zeroed - p) < 4 * math.sqrt(p * (1 - p) / n)  # 4 sigma
    kept = d[d != 0]
    assert torch.equal(kept, surrogate_derivative(v[: kept.numel()], 1.25, SurrogateConfig("piecewise", 2.0, 0.0)))


def test_fresh_mask_each_backward_and_rescale_option():
    torch.manual_seed(2)
    v = torch.full((10_000,), 1.3)
    cfg = SurrogateConfig("piecewise", 2.0, 0.5)
    assert not torch.equal(masked_derivative(v, 1.25, cfg) != 0, masked_derivative(v, 1.25, cfg) != 0)
    d = masked_derivative(v, 1.25, SurrogateConfig("piecewise", 2.0, 0.5, rescale=True))
    g = surrogate_derivative(v, 1.25, cfg)
    assert set(torch.unique(d).tolist()) == {0.0, float(g[0] * 2)}


def test_mask_in_the_network_backward():
    """Inside a block: gradient w.r.t. the voltage is masked with probability p, per element."""
    torch.manual_seed(3)
    p = 0.5
    neuron = MSGNeuron(**PARAMS, surrogate=SurrogateConfig("arctan", 2.0, p))  # arctan: never exactly 0
    v = (torch.rand(64, 50, 16) * 3).requires_grad_()
    neuron.spike(v).sum().backward()
    zeroed = float((v.grad == 0).sum()) / v.numel()
    assert abs(zeroed - p) < 4 * math.sqrt(p * (1 - p) / v.numel())


@pytest.mark.parametrize("kind", ["piecewise", "arctan", "slayer"])
def test_forward_is_slayers_bit_for_bit(kind):
    ref, msg = _pair_dense(SurrogateConfig(kind, 2.0, 0.5))
    x = _spikes((8, 40, 32))
    out_ref, out_msg = ref(x), msg(x)
    assert 0 < float(out_ref.mean()) < 0.9  # the comparison is not between two silent layers
    assert torch.equal(out_ref, out_msg)


def test_conv_forward_is_slayers_bit_for_bit():
    torch.manual_seed(4)
    ref = slayer.block.cuba.Conv(PARAMS, 2, 4, 3, padding=1, weight_scale=4, weight_norm=False, delay_shift=True)
    msg = MSGConv(PARAMS, 2, 4, 3, padding=1, weight_scale=4, weight_norm=False, delay_shift=True)
    msg.synapse.weight.data.copy_(ref.synapse.weight.data)
    x = _spikes((3, 2, 10, 10, 12))
    out = ref(x)
    assert 0 < float(out.mean()) < 0.9
    assert torch.equal(out, msg(x))


def test_p0_slayer_surrogate_gives_slayers_gradient_exactly():
    ref, msg = _pair_dense(SurrogateConfig("slayer", 2.0, 0.0))
    x = _spikes((8, 40, 32))
    w = torch.randn(30, 32, generator=torch.Generator().manual_seed(5))
    (ref(x) * w).sum().backward()
    (msg(x) * w).sum().backward()
    assert ref.synapse.weight.grad.abs().sum() > 0
    assert torch.equal(ref.synapse.weight.grad, msg.synapse.weight.grad)


class _PlainSG(torch.autograd.Function):
    """A plain surrogate-gradient spike written out by hand: Heaviside forward, piecewise backward."""

    @staticmethod
    def forward(ctx, v, spike_threshold, threshold):
        ctx.save_for_backward(v)
        ctx.threshold = threshold
        return (v >= spike_threshold).float()

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        x = (v - ctx.threshold) / ctx.threshold
        return grad * (torch.clamp(2.0 - 4.0 * x.abs(), min=0.0) / ctx.threshold), None, None


def test_p0_is_plain_sg_exactly_and_draws_no_random_numbers():
    _, msg = _pair_dense(SurrogateConfig("piecewise", 2.0, 0.0))
    x = _spikes((8, 40, 32))
    w = torch.randn(30, 32, generator=torch.Generator().manual_seed(6))

    neuron = msg.neuron
    th = float(neuron.threshold)
    state = torch.get_rng_state()
    (msg(x) * w).sum().backward()
    assert torch.equal(torch.get_rng_state(), state)
    grad_msg = msg.synapse.weight.grad.clone()
    msg.synapse.weight.grad = None

    # the same block with the hand-written SG spike
    original = neuron.spike
    neuron.spike = lambda v: _PlainSG.apply(v, th + neuron.threshold_eps, th)
    try:
        (msg(x) * w).sum().backward()
    finally:
        neuron.spike = original
    assert grad_msg.abs().sum() > 0
    assert torch.equal(grad_msg, msg.synapse.weight.grad)


def test_msg_gradient_is_sparser_than_sg():
    x = _spikes((8, 40, 32))
    w = torch.randn(30, 32, generator=torch.Generator().manual_seed(7))
    grads = {}
    for p in (0.0, 0.5):
        _, msg = _pair_dense(SurrogateConfig("piecewise", 2.0, p))
        torch.manual_seed(8)
        neuron_grads = []
        msg.neuron.register_full_backward_hook(lambda m, gi, go: neuron_grads.append(gi[0]))
        (msg(x) * w).sum().backward()
        grads[p] = msg.synapse.weight.grad
    assert not torch.equal(grads[0.0], grads[0.5])


def _pair_recurrent(surrogate, seed=0):
    torch.manual_seed(seed)
    ref = slayer.block.cuba.Recurrent(dict(PARAMS), 40, 30, weight_scale=4, weight_norm=False, delay_shift=True)
    msg = MSGRecurrent(PARAMS, 40, 30, weight_scale=4, weight_norm=False, delay_shift=True, surrogate=surrogate)
    msg.input_synapse.weight.data.copy_(ref.input_synapse.weight.data)
    msg.recurrent_synapse.weight.data.copy_(ref.recurrent_synapse.weight.data)
    return ref, msg


def test_recurrent_block_is_slayers_with_msg_neurons_and_8bit_synapses():
    ref, msg = _pair_recurrent(SurrogateConfig("slayer", 2.0, 0.0))
    assert isinstance(msg.neuron, MSGNeuron) and msg.neuron.persistent_state
    for synapse in (msg.input_synapse, msg.recurrent_synapse):
        assert synapse.pre_hook_fx == msg.neuron.quantize_8bit
        q = synapse.pre_hook_fx(synapse.weight) * 64
        assert torch.equal(q, torch.round(q / 2) * 2) and q.abs().max() <= 256  # even integers / 64
    x = _spikes((8, 40, 32))
    w = torch.randn(30, 32, generator=torch.Generator().manual_seed(9))
    out_ref, out_msg = ref(x), msg(x)
    assert 0 < float(out_ref.mean()) < 0.9
    assert torch.equal(out_ref, out_msg)
    (out_ref * w).sum().backward()
    (out_msg * w).sum().backward()
    for a, b in ((ref.input_synapse, msg.input_synapse), (ref.recurrent_synapse, msg.recurrent_synapse)):
        assert a.weight.grad.abs().sum() > 0
        assert torch.equal(a.weight.grad, b.weight.grad)  # p = 0, slayer's surrogate: slayer's gradient
    # slayer carries its neuron's state into the next call of the same batch size; the MSG block starts from rest
    with torch.no_grad():
        assert torch.equal(msg(x), out_msg.detach())
        assert not torch.equal(ref(x), out_ref.detach())


def test_recurrent_msg_masks_the_recurrent_neurons(monkeypatch):
    """The recurrent block steps its neuron one step at a time: each step's backward draws its own mask."""
    from spikeship.train import msg as msg_module

    derivatives = []

    def recording(*args, **kwargs):
        derivatives.append(masked_derivative(*args, **kwargs))
        return derivatives[-1]

    monkeypatch.setattr(msg_module, "masked_derivative", recording)
    _, msg = _pair_recurrent(SurrogateConfig("arctan", 2.0, 0.5))  # arctan: never exactly 0
    x = _spikes((8, 40, 32))
    (msg(x) * torch.randn(30, 32, generator=torch.Generator().manual_seed(10))).sum().backward()
    assert len(derivatives) == 32 and derivatives[0].shape == (8, 30, 1)  # one per step
    d = torch.cat([g.reshape(-1) for g in derivatives])
    zeroed = float((d == 0).sum()) / d.numel()
    assert abs(zeroed - 0.5) < 4 * math.sqrt(0.25 / d.numel())
    assert msg.recurrent_synapse.weight.grad.abs().sum() > 0


def test_recurrent_block_state_stays_out_of_checkpoints():
    _, msg = _pair_recurrent(SurrogateConfig())
    msg(_spikes((8, 40, 6)))
    state = msg.state_dict()
    assert "spike_state" not in state
    _, fresh = _pair_recurrent(SurrogateConfig(), seed=1)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.recurrent_synapse.weight, msg.recurrent_synapse.weight)


def test_config_validation():
    with pytest.raises(ValueError, match="mask probability"):
        SurrogateConfig(mask_prob=1.0)
    with pytest.raises(ValueError, match="surrogate must be"):
        SurrogateConfig(kind="sigmoid")
    with pytest.raises(ValueError, match="graded_spike"):
        MSGNeuron(**{**PARAMS, "graded_spike": True})


def test_mix_fill_replaces_masked_entries_by_the_other_surrogate():
    torch.manual_seed(9)
    v = torch.full((5_000,), 1.5)
    d = masked_derivative(v, 1.25, SurrogateConfig("piecewise", 2.0, 0.5, fill="mix"))
    pw = float(surrogate_derivative(v[:1], 1.25, SurrogateConfig("piecewise", 2.0, 0.0)))
    at = float(surrogate_derivative(v[:1], 1.25, SurrogateConfig("arctan", 2.0, 0.0)))
    values = set(torch.unique(d).tolist())
    assert values == {pw, at}
    assert abs(float((d == at).double().mean()) - 0.5) < 4 * math.sqrt(0.25 / v.numel())
