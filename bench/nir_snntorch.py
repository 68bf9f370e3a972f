"""Bring an snnTorch model to Lava, with proof, and send it back: the worked example of README "NIR".

    .venv/bin/python bench/nir_snntorch.py --out nir-demo [--epochs 5] [--finetune-epochs 3] [--own-epochs 6]

1. snnTorch 1.0: train Flatten -> Linear(2312, 128) -> Synaptic -> Linear(128, 10) -> Synaptic (reset to zero
   without delay, no bias) on event-digits frames (spike-count cross-entropy, BPTT over T = 16).
2. Write it as NIR: snnTorch's ``export_to_nir`` fails on a Synaptic stack under nir 1.0.8 (its type
   inference); the graph is assembled from the nodes snnTorch's exporter writes for each module.
3. ``spikeship import`` -> checkpoint (and its check against the graph's float reference).
4. ``spikeship export`` -> .net; the whole test split in Lava and the emulator; parity PyTorch = emulator = Lava.
5. Per-layer spike agreement and accuracy: snnTorch original, float reference, imported (Loihi integers), Lava.
6. Fine-tune the import with MSG + TWO (``train --init``) and run it in Lava.
7. The other way: spikeship's own dense network (MSG + TWO), exported to NIR at dt = 1e-4, run in snnTorch's
   ``import_from_nir``; its accuracy and spike agreement against ours (Lava).

snnTorch is a dev dependency (``pip install -e '.[dev]'``). Prints every figure; writes ``OUT/summary.json``.
Wall times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))  # the snnTorch helpers
from snntorch_nets import FAITHFUL, snntorch_graph, snntorch_spikes  # noqa: E402

T = 16
ALPHA, BETA = 0.5, 0.9


def build_snntorch(hidden: int):
    import snntorch as snn

    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(2 * 34 * 34, hidden, bias=False), snn.Synaptic(ALPHA, BETA, **FAITHFUL),
        torch.nn.Linear(hidden, 10, bias=False), snn.Synaptic(ALPHA, BETA, **FAITHFUL))


def train_snntorch(net, train, test, epochs: int, seed: int) -> list[str]:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    lines = []
    x_all, y_all = train.frames, train.labels
    for epoch in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed + epoch))
        net.train()
        for lo in range(0, len(order), 64):
            idx = order[lo:lo + 64]
            counts = snntorch_spikes(net, x_all[idx])[-1].sum(-1)
            loss = torch.nn.functional.cross_entropy(counts, y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = snntorch_accuracy(net, test)
        lines.append(f"   epoch {epoch + 1}: loss {float(loss):.3f}, test {100 * acc:.2f}%, "
                     f"{time.perf_counter() - started:.1f} s")
        print(lines[-1], flush=True)
    return lines


@torch.no_grad()
def snntorch_accuracy(net, data) -> float:
    net.eval()
    counts = snntorch_spikes(net, data.frames)[-1].sum(-1)
    return float((counts.argmax(1) == data.labels).float().mean())


@torch.no_grad()
def run_imported_in_snntorch(nir_path: Path, inputs: np.ndarray, layers: int):
    """snnTorch's import_from_nir of our graph on all samples at once: (readout per step (N, classes, T), spikes per
    layer (N, F, T)). snnTorch maps NIR's Flatten(start_dim=0) (no batch axis in NIR) to torch's Flatten(0), which
    would flatten the batch too; that one module is replaced by Flatten(1) to run a batch (one sample at a time
    without it gives the same numbers, slower)."""
    import nir
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(nir.read(nir_path))
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Flatten) and child.start_dim == 0:
            setattr(module, name, torch.nn.Flatten(1, child.end_dim))
    neurons = [dict(module.named_children())[f"lif{k}"] for k in range(layers)]
    recorded: list[list] = [[] for _ in range(layers)]
    for k, m in enumerate(neurons):
        m.register_forward_hook(lambda _m, _i, out, k=k: recorded[k].append(out[0] if isinstance(out, tuple) else out))
        m.reset_mem()
    x = torch.as_tensor(inputs, dtype=torch.float32)
    state, steps = None, []
    for t in range(x.shape[-1]):
        out, state = module(x[..., t], state)
        steps.append(out)
    return (torch.stack(steps, -1).numpy(),
            [torch.stack(recorded[k], -1).to(torch.uint8).numpy() for k in range(layers)])


def agreement_line(name: str, pairs) -> str:
    return f"   {name}: " + "; ".join(f"layer {k} {100 * a['equal']:.2f}% equal, {a['spikes'][0]:,} vs "
                                     f"{a['spikes'][1]:,} spikes, jaccard {a['jaccard']:.3f}" for k, a in enumerate(pairs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="nir-demo")
    p.add_argument("--epochs", type=int, default=5, help="snnTorch training epochs")
    p.add_argument("--finetune-epochs", type=int, default=3, help="spikeship MSG + TWO epochs after the import")
    p.add_argument("--finetune-lr", type=float, default=1e-4, help="AdamW learning rate of the fine-tuning")
    p.add_argument("--own-epochs", type=int, default=6, help="epochs of spikeship's own network sent to snnTorch")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import contextlib
    import io

    import nir
    import snntorch

    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl's notice about its optional Prophesee toolbox
        import lava.lib.dl.slayer  # noqa: F401

    from spikeship import backends
    from spikeship.backends import RunOptions
    from spikeship.export.netx import read_net
    from spikeship.export.stage import ExportConfig, export_checkpoint
    from spikeship.import_stage import ImportConfig, import_nir
    from spikeship.sim.parity import check_parity
    from spikeship.train.checkpoint import load_checkpoint
    from spikeship.train.data import load_dataset
    from spikeship.train.loop import TrainConfig, train
    from spikeship.train.nir_graph import graph_metadata, read_graph, walk_graph
    from spikeship.train.nir_reference import agreement, aligned_weights, decide, simulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for run in ("tuned", "own"):  # this script's own training runs: a second run of it starts them afresh
        shutil.rmtree(out / run, ignore_errors=True)
    started = time.perf_counter()
    summary: dict = {"versions": {"snntorch": snntorch.__version__, "nir": nir.version, "torch": torch.__version__}}
    train_set = load_dataset("event-digits", None, T, "train")
    test = load_dataset("event-digits", None, T, "test")
    x_test, y_test = test.spikes.numpy(), test.labels.numpy()

    print(f"== 1. snnTorch {snntorch.__version__}: Flatten -> Linear(2312, {args.hidden}) -> Synaptic -> "
          f"Linear({args.hidden}, 10) -> Synaptic, alpha {ALPHA}, beta {BETA}, reset to zero without delay, "
          f"{args.epochs} epochs on event-digits (T = {T})", flush=True)
    torch.manual_seed(args.seed)
    net = build_snntorch(args.hidden)
    t0 = time.perf_counter()
    train_snntorch(net, train_set, test, args.epochs, args.seed)
    summary["snntorch_train_s"] = time.perf_counter() - t0

    print("== 2. write NIR as snnTorch writes it", flush=True)
    try:
        from snntorch.export_nir import export_to_nir

        export_to_nir(net, torch.zeros(1, 2, 34, 34), ignore_dims=[0])
        print("   snntorch.export_to_nir worked")
    except Exception as e:  # noqa: BLE001 - reporting what snnTorch's own exporter does, whatever it raises
        print(f"   snntorch.export_to_nir: {type(e).__name__}: {e} (nir {nir.version} type inference); the graph "
              f"is assembled from snnTorch's per-module node exporter instead")
    nir_path = out / "snntorch.nir"
    nir.write(nir_path, snntorch_graph(net, (2, 34, 34), 10), compression=None)  # 0-d parameters: no compression
    print(f"   {nir_path}", flush=True)

    print("== 3. spikeship import", flush=True)
    ckpt = out / "imported.pt"
    result = import_nir(ImportConfig(nir=nir_path, out=ckpt, dt=1e-4, dataset="event-digits", time_steps=T,
                                     samples=len(y_test)))
    for line in result.lines():
        print("   " + line)

    print("== 4. export, Lava on the whole test split, parity", flush=True)
    net_path = out / "imported.net"
    export_checkpoint(ExportConfig(model=ckpt, out=net_path))
    deployed = read_net(net_path)
    t0 = time.perf_counter()
    parity = check_parity(deployed, load_checkpoint(ckpt).build_model(), x_test, y_test, against=("lava",))
    lava_s = time.perf_counter() - t0
    r = parity.result
    print(f"   parity PyTorch = emulator = Lava on {r.samples} samples: {'OK' if r.ok else r.first_mismatch.line()} "
          f"({lava_s:.1f} s)")

    print("== 5. agreement and accuracy", flush=True)
    graph = read_graph(nir_path)
    walked = walk_graph(graph, 1e-4, (2, 34, 34))
    ref_readout, ref_spikes = simulate(walked, x_test)
    with torch.no_grad():
        net.eval()
        original = [s.to(torch.uint8).numpy() for s in snntorch_spikes(net, test.frames)]
    lava_result = parity.runs["lava"]
    layers = len(deployed.layers)
    two = np.ones(T)
    acc = {
        "snntorch original (float32, spike count over all T)": float((original[-1].sum(-1).argmax(1) == y_test).mean()),
        "float reference (float64, all T)": float((decide(ref_readout, two) == y_test).mean()),
        "float reference (steps the deployed readout sees)":
            float((decide(ref_readout, aligned_weights(two, layers)) == y_test).mean()),
        "imported, PyTorch (Loihi integers)": r.accuracy["pytorch"],
        "deployed, emulator": r.accuracy["emulator"],
        "deployed, Lava": r.accuracy["lava"],
    }
    agree = {
        "float reference vs snnTorch": [agreement(a, b) for a, b in zip(ref_spikes, original)],
        "imported = Lava vs snnTorch": [agreement(lava_result.windows[k], original[k]) for k in range(layers)],
        "imported = Lava vs float reference": [agreement(lava_result.windows[k], ref_spikes[k]) for k in range(layers)],
    }
    for name, value in acc.items():
        print(f"   {name:55s} {100 * value:6.2f}%")
    for name, pairs in agree.items():
        print(agreement_line(name, pairs))
    summary.update(import_lines=result.lines(), parity_ok=r.ok, accuracy=acc, agreement=agree, lava_s=lava_s)

    print(f"== 6. fine-tune the import with MSG + TWO (train --init, {args.finetune_epochs} epochs, lr "
          f"{args.finetune_lr:g})", flush=True)
    tuned_dir = out / "tuned"
    metrics = train(TrainConfig(init=str(ckpt), dataset="event-digits", time_steps=T, epochs=args.finetune_epochs,
                                lr=args.finetune_lr, out=str(tuned_dir), progress=False, seed=args.seed))
    tuned_path = out / "tuned.net"
    export_checkpoint(ExportConfig(model=tuned_dir / "model.pt", out=tuned_path))
    tuned = backends.run("lava", read_net(tuned_path), x_test, RunOptions(record_spikes=True))
    print(f"   test {100 * metrics['test_accuracy']:.2f}% (PyTorch), Lava {100 * float((tuned.predictions == y_test).mean()):.2f}%; "
          + agreement_line("spikes vs the import (Lava)", [agreement(tuned.windows[k], lava_result.windows[k])
                                                          for k in range(layers)]).strip())

    print(f"== 7. the other way: spikeship's own dense network (MSG + TWO, {args.own_epochs} epochs) -> export --nir "
          f"(dt 1e-4) -> snnTorch import_from_nir", flush=True)
    own_dir = out / "own"
    own_metrics = train(TrainConfig(dataset="event-digits", time_steps=T, epochs=args.own_epochs, out=str(own_dir),
                                    progress=False, seed=args.seed))
    own_net, own_nir = out / "own.net", out / "own.nir"
    export_checkpoint(ExportConfig(model=own_dir / "model.pt", out=own_net, nir=own_nir, nir_dt=1e-4))
    own = read_net(own_net)
    ours = backends.run("lava", own, x_test, RunOptions(record_spikes=True))
    t0 = time.perf_counter()
    snn_readout, snn_spikes = run_imported_in_snntorch(own_nir, x_test, own.num_layers)
    snn_s = time.perf_counter() - t0
    own_two = np.asarray(graph_metadata(read_graph(own_nir)).two_weights)
    back = {
        "ours, Lava": float((ours.predictions == y_test).mean()),
        "snnTorch import_from_nir, TWO decode on the steps ours sees":
            float((decide(snn_readout, aligned_weights(own_two, own.num_layers)) == y_test).mean()),
        "snnTorch import_from_nir, TWO decode on all T steps": float((decide(snn_readout, own_two) == y_test).mean()),
    }
    back_agree = [agreement(ours.windows[k], snn_spikes[k]) for k in range(own.num_layers)]
    print(f"   trained: test {100 * own_metrics['test_accuracy']:.2f}%")
    for name, value in back.items():
        print(f"   {name:60s} {100 * value:6.2f}%")
    print(agreement_line("snnTorch vs ours (Lava)", back_agree) + f" ({snn_s:.1f} s in snnTorch)")
    summary.update(finetune=metrics["test_accuracy"], finetune_lava=float((tuned.predictions == y_test).mean()),
                   back=back, back_agreement=back_agree, wall_s=time.perf_counter() - started)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(f"wall time {summary['wall_s']:.0f} s; {out / 'summary.json'}")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
