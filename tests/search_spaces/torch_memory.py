"""Measure a torch forward pass for the static-metric tests: planned peak memory from the
ops torch actually runs, and conv/linear output sizes by forward hooks.

The trace records every aten op (TorchDispatchMode). Each op's output is a tensor group,
except where the op only renames a value: views, activations (ReLU, ReLU6, h-swish, swish, sigmoid gates), BatchNorm, adding a scalar (fused:
the output joins its input's group), and multiplying by zero (a zero constant, no memory;
adding it is free). Parameters are not activations. A group is live from the op that
creates it to its last reader (the input image from the start, the output to the end),
and the peak is the largest sum of live group sizes at any op: what a runtime with a
memory planner and fused Conv-BN-ReLU needs.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ALIAS_OPS = {"view", "_unsafe_view", "t", "transpose", "expand", "relu", "relu_", "threshold",
             "_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm", "flatten",
             "detach", "alias", "squeeze", "unsqueeze", "reshape",
             # the other activations (ReLU6, h-swish, swish, the squeeze-excite gates) fuse like ReLU
             "hardtanh", "hardtanh_", "hardswish", "hardswish_", "silu", "silu_", "sigmoid", "sigmoid_",
             "hardsigmoid", "hardsigmoid_"}
ZERO = -1


class Trace(TorchDispatchMode):
    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.group: dict[int, int] = {image.untyped_storage().data_ptr(): 0}  # storage -> group
        self.sizes = [image.numel()]
        self.created = [-1]
        self.ops: list[list[int]] = []     # groups each real op reads
        self.keep: list[torch.Tensor] = []  # no storage is freed (and reused) while tracing
        self.last_out = 0

    def _groups(self, args) -> list[int]:
        out = []
        for a in tree_leaves(args):
            if isinstance(a, torch.Tensor):
                g = self.group.get(a.untyped_storage().data_ptr())
                if g is not None and g != ZERO:
                    out.append(g)
        return out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        tensors = [a for a in tree_leaves(args) if isinstance(a, torch.Tensor)]
        known = [self.group.get(a.untyped_storage().data_ptr()) for a in tensors]
        activations = [g for g in known if g is not None]
        results = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.numel() > 0]
        self.keep += results
        if not activations:
            return out  # parameters only
        scalar_other = len(tensors) == 1 and any(isinstance(a, (int, float)) for a in args[1:2])
        if name == "mul" and scalar_other and args[1] == 0:
            target = ZERO
        elif name in ALIAS_OPS or (name == "add" and scalar_other):
            target = activations[0]
        elif name == "add" and ZERO in activations:
            rest = [g for g in activations if g != ZERO]
            target = rest[0] if rest else ZERO
        else:
            self.ops.append(self._groups(args))
            self.sizes.append(results[0].numel())
            self.created.append(len(self.ops) - 1)
            target = len(self.sizes) - 1
        for t in results[:1]:
            self.group[t.untyped_storage().data_ptr()] = target
        self.last_out = target
        return out

    def peak(self) -> int:
        last = list(self.created)
        for k, reads in enumerate(self.ops):
            for g in reads:
                last[g] = k
        if self.last_out != ZERO:
            last[self.last_out] = len(self.ops)
        return max(sum(s for g, s in enumerate(self.sizes) if self.created[g] <= k <= last[g])
                   for k in range(len(self.ops)))


def planned_peak(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Peak live activation values during ``model(x)`` under a memory planner."""
    with torch.no_grad(), Trace(x) as trace:
        model(x)
    return trace.peak()


def layer_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """Output elements of every Conv2d and Linear in execution order, by forward hooks."""
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: sizes.append(out.numel()))
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sizes
