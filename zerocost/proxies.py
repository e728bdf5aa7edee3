"""The zero-cost proxies: scores of an untrained network from one minibatch, each with its paper.

Every proxy of one network comes from at most three passes, shared between the proxies that
need them (so asking for all of them costs little more than asking for the dearest):

* **static** - one image, no gradients: the parameter count and the multiply-accumulates;
* **data** - the minibatch forward in training mode, then the gradients the chosen proxies
  need from that one graph: of the cross-entropy loss with respect to the weights (snip,
  grad_norm, plain, fisher's activations) and, through a second derivative, their Hessian
  product (grasp); of the summed logits with respect to the input (jacov, epe_nas); and the
  rectifiers' on/off codes recorded on the way forward (naswot);
* **synflow** - a copy of the network with absolute weights and no batch norm, in double
  precision, on an all-ones image.

"Weights" are those of the convolution and linear layers (the prunable layers of the pruning
papers several proxies come from); sums run over them. Higher is better for every proxy as
defined here. A proxy that cannot be computed for a network (the output does not depend on
the input, so its Jacobian has no correlation) is NaN: it ranks below every number.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narnas.registry import Registry

from .errors import ZeroCostError


@dataclass(frozen=True)
class Proxy:
    """One proxy: its name, the passes it needs, how it is computed from them, and its source."""

    name: str
    needs: frozenset
    compute: Callable[["Probe"], float]
    source: str


def _unknown(kind, name, valid):
    return ZeroCostError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")


PROXIES = Registry("zero-cost proxy", error=_unknown)


def proxy(name: str, needs: set, source: str):
    """Register ``compute(probe) -> float`` as the proxy ``name``."""
    def decorate(compute):
        PROXIES.register(name)(Proxy(name, frozenset(needs), compute, source))
        return compute
    return decorate


def names() -> list[str]:
    """Every proxy, in the order they were registered."""
    return PROXIES.registered()


def vote(values: np.ndarray) -> np.ndarray:
    """Each row's mean rank over the columns of ``values`` [n, proxies] (higher is better; a NaN
    ranks last): the zero-cost strategy's vote."""
    from scipy.stats import rankdata
    ranks = [rankdata(np.where(np.isnan(col), -np.inf, col)) for col in np.asarray(values).T]
    return np.mean(ranks, axis=0) if ranks else np.zeros(len(values))


def resolve(names_: list[str] | tuple[str, ...] | None) -> list[Proxy]:
    """The proxies named (None or "all": every one); an unknown name lists the valid ones."""
    if not names_ or list(names_) == ["all"]:
        names_ = names()
    return [PROXIES.get(n) for n in names_]


# --- the passes ---------------------------------------------------------------------------
_RECTIFIER = re.compile(r"relu|swish", re.IGNORECASE)  # nn.ReLU, ReLU6, Hardswish, OFA's Hswish


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def logits_of(output):
    """A network's logits (networks with an auxiliary head return (logits, aux) in training)."""
    return output[0] if isinstance(output, (tuple, list)) else output


class Probe:
    """The passes ``needs`` asks for, run once on ``model`` with ``images`` [N, C, H, W] and
    ``labels`` [N]; the proxies read what they need from its attributes."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, needs: set):
        self.model, self.images, self.labels = model, images, labels
        self.layers = weighted_layers(model)
        self.weights = [m.weight for m in self.layers]  # for autograd
        self.weight_values = [w.detach() for w in self.weights]  # for the proxies' sums
        if "static" in needs:
            self._static()
        if needs & {"grads", "activations", "hessian", "jacobian", "codes"}:
            self._data(needs)
        if "synflow" in needs:
            self.synflow_grads, self.synflow_weights = _synflow_pass(model, images.shape[1:])

    def _static(self):
        self.params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        macs = []

        def count(module, inputs, output):
            per_output = module.weight[0].numel()  # (in / groups) * kh * kw, or in_features
            macs.append(output.numel() * per_output)
        hooks = [m.register_forward_hook(count) for m in self.layers]
        try:
            self.model.eval()
            with torch.no_grad():
                self.model(self.images[:1])
        finally:
            for h in hooks:
                h.remove()
        self.macs = sum(macs)

    def _data(self, needs: set):
        model = self.model
        model.train()
        outputs, kernel = [], None
        hooks = []
        if "activations" in needs:
            hooks += [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in self.layers]
        if "codes" in needs:
            n = len(self.images)
            kernel = torch.zeros(n, n, dtype=torch.float64, device=self.images.device)

            def record(module, inputs, output):
                on = (output.detach() > 0).flatten(1).float()
                # units where both images agree: both on (on . on) or both off (d - s_i - s_j + on . on)
                both, active = (on @ on.T).double(), on.sum(1).double()
                kernel.add_(2 * both - active[:, None] - active[None, :] + on.shape[1])
            hooks += [m.register_forward_hook(record) for m in model.modules()
                      if _RECTIFIER.search(type(m).__name__)]
        x = self.images.clone().requires_grad_("jacobian" in needs)
        try:
            logits = logits_of(model(x))
        finally:
            for h in hooks:
                h.remove()
        self.codes_kernel = kernel
        loss = F.cross_entropy(logits, self.labels)
        if needs & {"grads", "activations", "hessian"}:
            wrt = self.weights + outputs
            grads = torch.autograd.grad(loss, wrt, allow_unused=True, retain_graph=True,
                                        create_graph="hessian" in needs)
            grads = [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads)]
            self.grads = [g.detach() for g in grads[:len(self.weights)]]
            self.activations = [(o.detach(), g.detach()) for o, g in zip(outputs, grads[len(self.weights):])]
            if "hessian" in needs:
                # H g from one more backward: the gradient of g . stop_gradient(g). (A central difference
                # of two more gradients costs a third as much but, in float32 and across ReLU kinks,
                # flips grasp's sign on most NB201 cells: measured.)
                dot = sum((g * g.detach()).sum() for g in grads[:len(self.weights)] if g.requires_grad)
                hg = torch.autograd.grad(dot, self.weights, allow_unused=True, retain_graph=True) \
                    if torch.is_tensor(dot) else [None] * len(self.weights)
                self.hessian_grads = [torch.zeros_like(w) if h is None else h.detach()
                                      for w, h in zip(self.weights, hg)]
        if "jacobian" in needs:
            (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
            self.jacobian = (torch.zeros_like(x) if jac is None else jac).detach().flatten(1).double().cpu().numpy()


def _synflow_pass(model: nn.Module, image_shape) -> tuple[list, list]:
    net = copy.deepcopy(model).double().eval()
    _drop_batch_norm(net)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = [m.weight for m in weighted_layers(net)]
    device = next(net.parameters()).device
    out = logits_of(net(torch.ones((1, *image_shape), dtype=torch.float64, device=device)))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)], [w.detach() for w in weights]


def _drop_batch_norm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _drop_batch_norm(child)


# --- the proxies --------------------------------------------------------------------------
# Definitions as the papers give them; higher is better for all.

@proxy("params", {"static"}, "the parameter count, the baseline of every zero-cost study (Ning et al. 2021, "
                             "'Evaluating efficient performance estimators'; ZiCo, Li et al. 2023)")
def _params(p: Probe) -> float:
    return p.params


@proxy("flops", {"static"}, "multiply-accumulates of one image's forward pass through the convolution and linear "
                            "layers, the 'FLOPs' of NAS papers (Abdelfattah et al. 2021, baseline)")
def _flops(p: Probe) -> float:
    return p.macs


@proxy("grad_norm", {"grads"}, "sum over layers of the Euclidean norm of the loss gradient "
                               "(Abdelfattah et al. 2021, 'Zero-cost proxies for lightweight NAS')")
def _grad_norm(p: Probe) -> float:
    return float(sum(g.norm() for g in p.grads))


@proxy("snip", {"grads"}, "connection sensitivity: sum of |dL/dw * w| (Lee et al. 2019, SNIP; as a proxy: "
                          "Abdelfattah et al. 2021)")
def _snip(p: Probe) -> float:
    return float(sum((g * w).abs().sum() for g, w in zip(p.grads, p.weight_values)))


@proxy("plain", {"grads"}, "sum of dL/dw * w, snip without the absolute value (Mozer & Smolensky 1989; "
                           "Abdelfattah et al. 2021)")
def _plain(p: Probe) -> float:
    return float(sum((g * w).sum() for g, w in zip(p.grads, p.weight_values)))


@proxy("grasp", {"grads", "hessian"}, "gradient signal preservation: -sum of w * (H g), H the loss Hessian, "
                                      "g its gradient (Wang et al. 2020, GraSP; Abdelfattah et al. 2021)")
def _grasp(p: Probe) -> float:
    return float(-sum((w * hg).sum() for w, hg in zip(p.weight_values, p.hessian_grads)))


@proxy("fisher", {"activations"}, "sum over every channel of the layer outputs of 1/2 * mean over images of "
                                  "(sum over positions of z * dL/dz)^2 (Theis et al. 2018; Turner et al. 2020, "
                                  "BlockSwap; Abdelfattah et al. 2021)")
def _fisher(p: Probe) -> float:
    total = 0.0
    for z, g in p.activations:
        per_channel = (z * g).sum(dim=tuple(range(2, z.dim()))) if z.dim() > 2 else z * g
        total += float(per_channel.pow(2).mean(0).mul(0.5).sum())
    return total


@proxy("jacov", {"jacobian"}, "Jacobian covariance: -sum over the eigenvalues v of the correlation matrix of the "
                              "images' input Jacobians of log(v + k) + 1/(v + k), k = 1e-5 (Mellor et al. 2020, "
                              "'Neural architecture search without training', v1)")
def _jacov(p: Probe) -> float:
    corr = _correlation(p.jacobian)
    if corr is None:
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(np.maximum(v, 0) + k) + 1.0 / (np.maximum(v, 0) + k)))


@proxy("epe_nas", {"jacobian"}, "sum over classes of |sum of log(|C_c| + k)|, C_c the correlation matrix of the "
                                "input Jacobians of class c's images, k = 1e-5 (Lopes et al. 2021, EPE-NAS)")
def _epe_nas(p: Probe) -> float:
    labels = p.labels.cpu().numpy()
    total, any_class = 0.0, False
    for c in np.unique(labels):
        corr = _correlation(p.jacobian[labels == c])
        if corr is not None:
            total += abs(float(np.sum(np.log(np.abs(corr) + 1e-5))))
            any_class = True
    return total if any_class else float("nan")


@proxy("naswot", {"codes"}, "log |det K|, K[i, j] the number of rectifiers on which images i and j agree "
                            "(on or off) (Mellor et al. 2021, 'Neural architecture search without training')")
def _naswot(p: Probe) -> float:
    sign, logdet = torch.linalg.slogdet(p.codes_kernel)
    return float(logdet) if float(sign) != 0 else float("nan")


@proxy("synflow", {"synflow"}, "synaptic flow: sum of w * dR/dw, R the summed output of the network with |w| "
                               "and no batch norm on an all-ones input, in double precision (Tanaka et al. 2020, "
                               "SynFlow; Abdelfattah et al. 2021)")
def _synflow(p: Probe) -> float:
    return float(sum((g * w).sum() for g, w in zip(p.synflow_grads, p.synflow_weights)))


@proxy("l2_norm", {"static"}, "sum over layers of the Euclidean norm of the weights (NASLib's zero-cost suite, "
                              "White et al. 2022 / Krishnakumar et al. 2022, NAS-Bench-Suite-Zero)")
def _l2_norm(p: Probe) -> float:
    return float(sum(w.detach().norm() for w in p.weight_values))


def _correlation(rows: np.ndarray) -> np.ndarray | None:
    """The correlation matrix of ``rows``; None where it is undefined (fewer than two rows, or
    a row that does not vary)."""
    if len(rows) < 2:
        return None
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    if not np.all(norms > 0):
        return None
    unit = centred / norms[:, None]
    return np.clip(unit @ unit.T, -1.0, 1.0)


def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, proxies: list[Proxy]) -> dict[str, float]:
    """``{proxy name: value}`` of ``model`` (its weights as they are) on one minibatch."""
    needs = set().union(*(p.needs for p in proxies))
    if not needs:
        return {}
    try:
        probe = Probe(model, images, labels, needs)
    except RuntimeError as err:
        raise ZeroCostError(f"the network failed on the proxies' minibatch of shape {tuple(images.shape)} "
                            f"({str(err).splitlines()[0][:160]})") from None
    return {p.name: float(p.compute(probe)) for p in proxies}
