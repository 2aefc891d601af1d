"""Benchmarks of the fused morphable reconstruction.

Sizes: BFM (3DDFA's bfm_noneck_v3, N = 38,365) and ICT-FaceKit (N = 11,248), I = 40,
E = 10 (the 3DDFA 62-parameter layout), B = 1 and 64; the sparse 68-landmark case;
forward + backward at B = 64. Random bases of the real sizes (the values do not
matter for speed).

Baselines:
  matmul     torch.mm(cat([A_id, A_exp], 1), cat([id, exp], 1).T): the single GEMM the
             reference spends its time in (target: within 1.5x of it);
  reference  pyface3d.ops.reference: mean + A_id @ id.T + A_exp @ exp.T, then the pose
             (index_select of the basis rows for the sparse case).
"""
from __future__ import annotations

import torch

from bench.harness import Case
from pyface3d.ops import _reference_morphable as ref
from pyface3d.ops import morphable

I, E = 40, 10


def _data(N, B, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s, scale=1.0):
        return (torch.randn(*s, generator=g, dtype=dtype) * scale).to(device)

    d = dict(pose=r(B, 3, 4), id_coeff=r(B, I), exp_coeff=r(B, E), mean=r(3 * N),
             id_basis=r(3 * N, I, scale=1e-2), exp_basis=r(3 * N, E, scale=1e-2))
    d["basis_cat"] = torch.cat([d["id_basis"], d["exp_basis"]], 1)
    d["coeff_cat"] = torch.cat([d["id_coeff"], d["exp_coeff"]], 1)
    return d


def _args(d, ids=None):
    return (d["pose"], d["id_coeff"], d["exp_coeff"], d["mean"], d["id_basis"], d["exp_basis"],
            ids)


def _bound(N, B, elem=4):
    """Bytes moved at least (basis read once + output written once)."""
    def extra():
        nbytes = (3 * N * (I + E + 1) + B * N * 3) * elem
        return {"bytes_moved": nbytes, "bound": f"{nbytes / 1e6:.1f} MB basis+output"}
    return extra


def cases(device: str, quick: bool) -> list:
    out = []
    sizes = [("BFM", 38365), ("ICT", 11248)]
    for model, N in sizes:
        for B in (1, 64):
            d = _data(N, B, device)
            a = _args(d)
            out.append(Case(
                name=f"morphable fwd {model} N={N} B={B} I={I} E={E} vs matmul",
                fn=lambda a=a: morphable.morphable_reconstruct(*a),
                baseline=lambda d=d: torch.mm(d["basis_cat"], d["coeff_cat"].T),
                baseline_name="matmul (3N x 50) @ (50 x B)",
                target="within 1.5x of matmul", target_ratio=1 / 1.5,
                extra=_bound(N, B)))
            out.append(Case(
                name=f"morphable fwd {model} N={N} B={B} vs reference",
                fn=lambda a=a: morphable.morphable_reconstruct(*a),
                baseline=lambda a=a: ref.morphable_reconstruct(*a),
                baseline_name="reference",
                target=">= 1x reference", target_ratio=1.0))
    # sparse: the 68 landmark vertices
    for model, N in sizes:
        for B in (1, 64):
            d = _data(N, B, device)
            ids = torch.randperm(N, generator=torch.Generator().manual_seed(1))[:68].to(device)
            a = _args(d, ids)
            out.append(Case(
                name=f"morphable fwd 68 landmarks {model} B={B} vs reference",
                fn=lambda a=a: morphable.morphable_reconstruct(*a),
                baseline=lambda a=a: ref.morphable_reconstruct(*a),
                baseline_name="reference (index_select + mm)",
                target=">= 1x reference", target_ratio=1.0))
    # forward + backward at B = 64 vs autograd through the reference
    for model, N in (sizes[1:] if quick else sizes):
        B = 64
        d = _data(N, B, device)
        g = torch.randn(B, N, 3, device=device)
        leaves = [d[k].clone().requires_grad_() for k in ("pose", "id_coeff", "exp_coeff")]

        def fb(f, d=d, g=g, leaves=leaves):
            for t in leaves:
                t.grad = None
            f(*leaves, d["mean"], d["id_basis"], d["exp_basis"]).backward(g)

        out.append(Case(
            name=f"morphable fwd+bwd {model} N={N} B={B} vs autograd reference",
            fn=lambda fb=fb: fb(morphable.morphable_reconstruct),
            baseline=lambda fb=fb: fb(ref.morphable_reconstruct),
            baseline_name="autograd reference",
            target=">= 1x reference", target_ratio=1.0))
    return out
