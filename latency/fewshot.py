"""HELP's few-shot setting: predict a new device's latencies from 20 measured archs.

A table of one space with one latency column per device (HELP's NB201 table: 17 columns,
GPUs at batch 1/32/256, CPUs, phones). For the target device, every column of the same
hardware (``lat_1080ti_1`` / ``_32`` / ``_256``) is left out, and:

1. A meta-model is fitted on the other devices: an MLP of the arch's encoding (one-hot
   operations and wiring) and the device's *hardware embedding* - its standardised log
   latencies on ``reference`` fixed archs, HELP's device representation - regressing the
   device's standardised log latency.
2. The new device is measured on ``shots`` archs (the reference archs among them). Its
   embedding comes from those, its scale (mean and spread of log latency) too, and the
   meta-model is fine-tuned on them for ``adapt_steps`` steps.
3. Kendall tau, MAPE and Acc(10%) on every other arch of the table.

Two baselines come with every result: ``scratch`` (ridge regression on the same encoding,
fitted on the shots alone) and ``no_adaptation`` (the meta-model with the new embedding
but without fine-tuning).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from predictor.errors import PredictorError


@dataclass(frozen=True)
class FewShotConfig:
    shots: int = 20
    reference: int = 10  # archs whose latencies embed a device (the first of the shots)
    source_archs: int = 4000  # archs per source device the meta-model sees
    hidden: int = 256
    steps: int = 6000
    batch_size: int = 256
    lr: float = 1e-3
    # Fine-tuning on the shots is kept short and slow: 100 steps at 3e-4 overfit the 20 archs
    # (pixel2: tau 0.75 -> 0.64); 30 at 1e-4 lowers MAPE and costs < 0.01 tau.
    adapt_steps: int = 30
    adapt_lr: float = 1e-4
    seed: int = 0

    def validate(self):
        if not 1 <= self.reference <= self.shots:
            raise PredictorError(f"need 1 <= reference <= shots, got reference {self.reference}, shots {self.shots}")
        if self.source_archs < self.shots or self.steps < 1 or self.adapt_steps < 0:
            raise PredictorError("source_archs must be >= shots, steps >= 1 and adapt_steps >= 0")


def hardware(column: str) -> str:
    """The device a latency column was measured on: ``lat_1080ti_32`` -> ``1080ti``; a trailing
    number is a batch size only when it is a power of two (``gold_6226`` is a CPU model)."""
    name = column.removeprefix("lat_")
    match = re.search(r"_(\d+)$", name)
    if match and int(match.group(1)) & (int(match.group(1)) - 1) == 0 and int(match.group(1)) <= 1024:
        return name[:match.start()]
    return name


def encode_archs(space, archs) -> np.ndarray:
    from predictor.graphs import batch_graphs, flat_encoding
    graphs = [space.to_graph(a) for a in archs]
    return flat_encoding(batch_graphs(graphs), len(graphs[0].vocab))


class _MetaNet(nn.Module):
    def __init__(self, arch_features, reference, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(arch_features + reference, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x, h):
        return self.net(torch.cat([x, h], dim=-1)).squeeze(-1)


def _standardise(logs):
    mean, std = float(logs.mean()), float(logs.std() + 1e-6)
    return (logs - mean) / std, mean, std


def _scores(pred_ms, truth_ms) -> dict:
    from predictor.metrics import accuracy_within, kendall_tau, mape
    return {"kendall_tau": kendall_tau(pred_ms, truth_ms), "mape": mape(pred_ms, truth_ms),
            "acc10": accuracy_within(pred_ms, truth_ms, 0.10)}


def few_shot(features: np.ndarray, latencies: dict[str, np.ndarray], target: str, config: FewShotConfig) -> dict:
    """Scores of the meta-model adapted to ``target`` and of the baselines, on every arch that is
    not a shot. ``features`` [A, F] encode the archs; ``latencies`` map column -> [A] (ms)."""
    config.validate()
    if target not in latencies:
        raise PredictorError(f"no latency column {target!r}; columns: {', '.join(sorted(latencies))}")
    sources = [c for c in latencies if hardware(c) != hardware(target)]
    if not sources:
        raise PredictorError(f"no other device than {hardware(target)} to learn from")
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    n = len(features)
    order = rng.permutation(n)
    shots, rest = order[:config.shots], order[config.shots:]
    reference = shots[:config.reference]
    pool = rest[:config.source_archs]  # source devices are learnt on archs that are not the shots
    x = torch.tensor(features, dtype=torch.float32)

    def embedding(logs):  # a device's standardised log latencies on the reference archs
        z, _, _ = _standardise(logs[reference])
        return torch.tensor(z, dtype=torch.float32)

    source_z, source_h = [], []
    for column in sources:
        logs = np.log(latencies[column])
        z, _, _ = _standardise(logs[pool])
        source_z.append(torch.tensor(z, dtype=torch.float32))
        source_h.append(embedding(logs))
    model = _MetaNet(features.shape[1], config.reference, config.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    pool_t = torch.from_numpy(pool)
    gen = torch.Generator().manual_seed(config.seed)
    for _ in range(config.steps):
        device = torch.randint(len(sources), (config.batch_size,), generator=gen)
        rows = torch.randint(len(pool), (config.batch_size,), generator=gen)
        h = torch.stack(source_h)[device]
        target_z = torch.stack(source_z)[device, rows]
        loss = nn.functional.mse_loss(model(x[pool_t[rows]], h), target_z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    logs = np.log(latencies[target])
    z_shots, mean, std = _standardise(logs[shots])
    h = embedding(logs)
    truth = latencies[target][rest]

    def predict(m):
        with torch.no_grad():
            z = m(x[torch.from_numpy(rest)], h.expand(len(rest), -1)).numpy()
        return np.exp(z * std + mean)

    result = {"target": target, "sources": sources, "shots": config.shots, "test_archs": int(len(rest))}
    result["no_adaptation"] = _scores(predict(model), truth)
    opt = torch.optim.AdamW(model.parameters(), lr=config.adapt_lr, weight_decay=1e-4)
    shots_t, z_t = torch.from_numpy(shots), torch.tensor(z_shots, dtype=torch.float32)
    for _ in range(config.adapt_steps):
        loss = nn.functional.mse_loss(model(x[shots_t], h.expand(len(shots), -1)), z_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    result["few_shot"] = _scores(predict(model), truth)
    result["scratch"] = _scores(_ridge(features[shots], logs[shots], features[rest]), truth)
    return result


def _ridge(x_train, log_y, x_test, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression of log latency on the encoding (centred; closed form)."""
    mx, my = x_train.mean(0), log_y.mean()
    a = x_train - mx
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (log_y - my))
    return np.exp((x_test - mx) @ w + my)
