"""Build a compact 3DDFA-style morphable model from ICT-FaceKit (MIT).

ICT-FaceKit has 100 identity modes and 53 expression blendshapes over 26,719 vertices.
:func:`build_ict_model` keeps a region (face, narrow face, or face + head/neck), reduces
the modes by PCA (SVD) to I identity and E expression components, scales them so that
standard-normal coefficients give plausible faces, converts units, triangulates, remaps
the 68 landmarks, sets whitening statistics for the 12 + I + E parameters and writes our
``.npz`` (:meth:`MorphableModel.save`).

Assumed coefficient distributions (see docs/morphable.md for the measurements):

- Identity: ICT samples identities with weights ~ N(0, 1) per mode
  (``FaceModel.randomize_identity`` draws ``np.random.normal``), and its identity deltas are
  already scaled (their norms fall from ~50 cm to ~1 cm over the 100 modes, nearly
  orthogonal: PCA components times their standard deviations). The shape covariance is then
  ``D D^T`` (D = (3N, 100) deltas), so with ``D = U S V^T`` the basis ``U[:, :I] * S[:I]``
  with a_id ~ N(0, 1) reproduces ICT's identity distribution, truncated to I components.
  No centring (ICT's mean identity is the neutral mesh).
- Expression: the 53 blendshapes carry weights in [0, 1] with no published distribution.
  Each blendshape at full strength is taken as one sample of an uncentred PCA
  (the neutral face is the rest pose, not the mean): second moment ``D_e D_e^T / 53``,
  basis ``U_e[:, :E] * S_e[:E] / sqrt(53)``; a_exp ~ N(0, 1) then moves the face about as
  much as one full blendshape on average.

Signs: each component is flipped so that its entry of largest magnitude is positive (the
first such entry on ties), which makes the output deterministic.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Union

import numpy as np

from .ict import load_ict_facekit, triangulate
from .model import MorphableModel, NUM_POSE_PARAMS
from .params import rotation_from_euler, whitening_stats

__all__ = ["build_ict_model", "PosePrior", "pca_basis", "UNITS", "REGIONS", "BUILDER_VERSION",
           "main"]

BUILDER_VERSION = 1
UNITS = {"cm": 1.0, "mm": 10.0, "um": 1.0e4}       # ICT-FaceKit is in centimetres
REGIONS = ("face", "face_narrow", "face_head")

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class PosePrior:
    """Assumed pose distribution for the whitening statistics of the 12 pose entries.

    Roughly 300W-LP's spread as seen in 3DDFA's statistics: yaw uniform in
    [-yaw_max, yaw_max], pitch and roll normal; scale log-normal around the scale that makes
    the frontal 68-landmark x extent ``landmark_width_px`` crop pixels (3DDFA's mean: ~84 of
    120); translation puts the landmark centroid at the crop centre (y up, 3DDFA crop space)
    plus normal jitter, depth 0.
    """
    yaw_max_deg: float = 90.0
    pitch_std_deg: float = 15.0
    roll_std_deg: float = 15.0
    landmark_width_px: float = 84.0
    log_scale_std: float = 0.1
    crop_size: float = 120.0
    shift_std_px: float = 3.0
    samples: int = 200_000
    seed: int = 0


def pca_basis(deltas: np.ndarray, k: int, scale: float = 1.0) -> Dict[str, np.ndarray]:
    """Uncentred PCA of modes.

    Args:
        deltas: (n, 3N) rows = modes (float64 recommended).
        k: components kept (<= n, and only components of nonzero variance).
        scale: columns are ``U[:, :k] * S[:k] * scale``.

    Returns:
        dict ``basis`` (3N, k) float64, ``singular_values`` (n,) descending,
        ``explained`` (k,) cumulative share of the total squared norm.
    """
    D = np.asarray(deltas, np.float64)
    if D.ndim != 2:
        raise ValueError(f"pca_basis: argument `deltas` must be (n, 3N), got {D.shape}")
    r = D.shape[0]
    if not 0 <= k <= r:
        raise ValueError(f"pca_basis: argument `k` must be in [0, {r}] (modes available), "
                         f"got {k}")
    # D^T = U S V^T through the small Gram matrix D D^T = V S^2 V^T (n x n, n = number of
    # modes, 100 for ICT): U = D^T V / S. Much cheaper than an SVD of the tall (3N, n)
    # matrix; float64 keeps the error of the smallest kept components ~1e-12.
    w, V = np.linalg.eigh(D @ D.T)
    order = np.argsort(w, kind="stable")[::-1]
    w, V = w[order], V[:, order]
    S = np.sqrt(np.clip(w, 0.0, None))      # eigenvalues of a Gram matrix are >= 0 (rounding)
    if k:
        # sqrt of Gram eigenvalues: absolute error ~ sqrt(eps) * S[0]
        tol = math.sqrt(max(D.shape) * np.finfo(np.float64).eps) * (S[0] if S.size else 0.0)
        if S[k - 1] <= tol:
            raise ValueError(f"pca_basis: only {int((S > tol).sum())} components have nonzero "
                             f"variance; cannot keep k = {k}")
    U = (D.T @ V[:, :k]) / S[:k][None, :] if k else np.zeros((D.shape[1], 0))
    if k:
        idx = np.argmax(np.abs(U), axis=0)
        signs = np.sign(U[idx, np.arange(k)])
        signs[signs == 0] = 1.0
        U = U * signs
    total = float((S ** 2).sum())
    explained = np.cumsum(S[:k] ** 2) / total if total > 0 else np.zeros(k)
    return {"basis": U * (S[:k] * scale)[None, :], "singular_values": S,
            "explained": explained}


def _region_vertices(d: Dict[str, np.ndarray], region: str) -> np.ndarray:
    if region == "face":
        lo, hi = d["region_face"]
    elif region == "face_narrow":
        lo, hi = d["region_face_narrow"]
    elif region == "face_head":
        lo, hi = d["region_face"][0], d["region_head_neck"][1]
        if d["region_face"][1] != d["region_head_neck"][0]:
            raise ValueError("build_ict_model: region_face and region_head_neck are not "
                             "adjacent; cannot form 'face_head'")
    else:
        raise ValueError(f"build_ict_model: argument `region` must be one of {REGIONS}, got "
                         f"{region!r}")
    return np.arange(int(lo), int(hi))


def _pose_stats(landmarks: np.ndarray, prior: PosePrior):
    """Monte Carlo mean/std of the 12 pose entries under ``prior`` (deterministic seed)."""
    rng = np.random.default_rng(prior.seed)
    n = prior.samples
    width = float(landmarks[:, 0].max() - landmarks[:, 0].min())
    if width <= 0:
        raise ValueError("build_ict_model: the 68 landmarks have zero x extent")
    f0 = prior.landmark_width_px / width
    yaw = np.deg2rad(rng.uniform(-prior.yaw_max_deg, prior.yaw_max_deg, n))
    pitch = np.deg2rad(rng.normal(0.0, prior.pitch_std_deg, n))
    roll = np.deg2rad(rng.normal(0.0, prior.roll_std_deg, n))
    f = f0 * np.exp(rng.normal(0.0, prior.log_scale_std, n))
    shift = rng.normal(0.0, prior.shift_std_px, (n, 2))
    import torch
    R = rotation_from_euler(torch.from_numpy(yaw), torch.from_numpy(pitch),
                            torch.from_numpy(roll)).numpy()
    A = f[:, None, None] * R
    c = landmarks.mean(axis=0)
    centre = np.zeros((n, 3))
    centre[:, 0] = prior.crop_size / 2 + shift[:, 0]
    centre[:, 1] = prior.crop_size / 2 + shift[:, 1]
    t = centre - A @ c
    P = np.concatenate([A, t[:, :, None]], axis=2).reshape(n, 12)
    return whitening_stats(P, std_floor=1e-12), f0


def build_ict_model(source: PathLike, out_path: Optional[PathLike] = None, n_id: int = 40,
                    n_exp: int = 10, region: str = "face", unit: str = "um",
                    pose_prior: PosePrior = PosePrior(), name: Optional[str] = None,
                    identities: Optional[Sequence[str]] = None,
                    expressions: Optional[Sequence[str]] = None,
                    progress: bool = True, basis_dtype: str = "float32") -> MorphableModel:
    """ICT-FaceKit -> compact MorphableModel (and our .npz when ``out_path`` is given).

    Args:
        source: ``ict_facekit_face_head.npz`` or the ICT-FaceKit ``FaceXModel`` folder.
        out_path: where to write the model (.npz), or None.
        n_id, n_exp: identity / expression components (default 40 / 10, as 3DDFA).
        region: "face" (vertices 0-9408, the default), "face_narrow" (0-6705) or
            "face_head" (0-11247, face + head and neck).
        unit: "um" (default; micrometres, the scale of 3DDFA's BFM), "mm" or "cm" (ICT's).
        pose_prior: assumed pose distribution for the pose whitening statistics.
        name: model name (default ``ict-facekit-<region>-id<I>-exp<E>-<unit>``).
        basis_dtype: ``"float16"`` rounds the identity / expression bases to float16 values
            (:meth:`MorphableModel.quantized`) and stores them so: the model that ships
            with pyface3d (half the size; another sha256 than the float32 build).
        identities, expressions: folder sources only: subsets of the OBJ files.
        progress: tqdm progress bars.

    Returns:
        The MorphableModel; identity and expression coefficients ~ N(0, 1) (param_mean 0,
        param_std 1 for them), pose statistics from ``pose_prior``. Deterministic for a
        given input on a given platform.
    """
    from tqdm import tqdm
    if unit not in UNITS:
        raise ValueError(f"build_ict_model: argument `unit` must be one of {sorted(UNITS)}, got "
                         f"{unit!r}")
    for n, v in (("n_id", n_id), ("n_exp", n_exp)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"build_ict_model: argument `{n}` must be an int >= 0, got {v!r}")
    steps = tqdm(total=5, desc="build ICT model", disable=not progress)
    d = load_ict_facekit(source, identities=identities, expressions=expressions,
                         progress=progress)
    steps.update()
    keep = _region_vertices(d, region)
    V = d["vertices_neutral"].shape[0]
    K = keep.shape[0]
    lut = np.full(V, -1, np.int64)
    lut[keep] = np.arange(K)

    tris_all = triangulate(d["faces"])
    uvtris_all = triangulate(d["faces_uv"])
    tri = lut[tris_all]
    inside = np.all(tri >= 0, axis=1)
    triangles = tri[inside].astype(np.int32)
    uv_used = uvtris_all[inside]
    uv_ids, uv_tri = np.unique(uv_used, return_inverse=True)
    uvs = d["uvs"][uv_ids]
    uv_triangles = uv_tri.reshape(-1, 3).astype(np.int32)

    lm = lut[d["landmarks68"].astype(np.int64)]
    if (lm < 0).any():
        raise ValueError(f"build_ict_model: landmarks {np.nonzero(lm < 0)[0].tolist()} lie "
                         f"outside region {region!r}")
    steps.update()

    s = UNITS[unit]
    n_id_avail = d["identity_deltas"].shape[0]
    n_exp_avail = d["expression_deltas"].shape[0]
    if n_id > min(n_id_avail, 3 * K) or n_exp > min(n_exp_avail, 3 * K):
        raise ValueError(f"build_ict_model: n_id = {n_id}, n_exp = {n_exp} exceed the modes "
                         f"available ({n_id_avail} identity, {n_exp_avail} expression)")
    D_id = d["identity_deltas"][:, keep, :].reshape(n_id_avail, 3 * K).astype(np.float64)
    pid = pca_basis(D_id, n_id, scale=s)
    steps.update()
    D_exp = d["expression_deltas"][:, keep, :].reshape(n_exp_avail, 3 * K).astype(np.float64)
    pexp = pca_basis(D_exp, n_exp, scale=s / math.sqrt(n_exp_avail))
    steps.update()

    mean = d["vertices_neutral"][keep].astype(np.float64).reshape(-1) * s
    (pose_mean, pose_std), f0 = _pose_stats(mean.reshape(-1, 3)[lm], pose_prior)
    P = NUM_POSE_PARAMS + n_id + n_exp
    param_mean = np.zeros(P, np.float32)
    param_std = np.ones(P, np.float32)
    param_mean[:12] = pose_mean.numpy()
    param_std[:12] = pose_std.numpy()

    name = name or f"ict-facekit-{region}-id{n_id}-exp{n_exp}-{unit}"
    meta = {
        "source": "ICT-FaceKit FaceXModel (USC ICT)", "licence": "MIT (ICT-FaceKit)",
        "builder": "pyface3d.morphable.builder.build_ict_model",
        "builder_version": BUILDER_VERSION,
        "unit": unit, "unit_scale_from_cm": s,
        "axes": "x right (subject's left), y up, z towards the viewer (ICT / 3DDFA model frame)",
        "region": region, "source_vertex_range": [int(keep[0]), int(keep[-1]) + 1],
        "source_vertices": int(V),
        "triangles_kept": int(inside.sum()), "triangles_total": int(tris_all.shape[0]),
        "identity": {
            "modes_in": int(n_id_avail), "components": int(n_id),
            "coefficients": "N(0,1) (ICT identity weights ~ N(0,1); basis U*S)",
            "explained_variance": float(pid["explained"][-1]) if n_id else 0.0,
            "explained_cumulative": [round(float(x), 6) for x in pid["explained"]]},
        "expression": {
            "modes_in": int(n_exp_avail), "components": int(n_exp),
            "names_in": [str(x) for x in d["expression_names"]],
            "coefficients": "N(0,1) (blendshapes as uncentred samples; basis U*S/sqrt(n))",
            "explained_variance": float(pexp["explained"][-1]) if n_exp else 0.0,
            "explained_cumulative": [round(float(x), 6) for x in pexp["explained"]]},
        "whitening": {"identity_expression": "mean 0, std 1",
                      "pose": "Monte Carlo over pose_prior", "pose_prior": asdict(pose_prior),
                      "frontal_scale_f0": f0},
        "sign_convention": "largest-magnitude entry of each component positive",
    }
    model = MorphableModel(mean=mean.astype(np.float32),
                           id_basis=pid["basis"].astype(np.float32),
                           exp_basis=pexp["basis"].astype(np.float32),
                           triangles=triangles, landmarks68=lm, param_mean=param_mean,
                           param_std=param_std, name=name, uvs=uvs, uv_triangles=uv_triangles,
                           metadata=meta)
    if basis_dtype == "float16":
        model = model.quantized()
    elif basis_dtype != "float32":
        raise ValueError(f"argument `basis_dtype` must be 'float32' or 'float16', got "
                         f"{basis_dtype!r}")
    if out_path is not None:
        model.save(out_path, basis_dtype=basis_dtype)
    steps.update()
    steps.close()
    return model


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m pyface3d.morphable SOURCE OUT.npz [--n-id 40] [--n-exp 10] [--region face]
    [--unit um] [--name NAME] [--basis-dtype float16]``; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m pyface3d.morphable",
                                 description="Build a compact morphable model from ICT-FaceKit")
    ap.add_argument("source", help="ict_facekit_face_head.npz or the FaceXModel folder")
    ap.add_argument("out", help="output .npz")
    ap.add_argument("--n-id", type=int, default=40)
    ap.add_argument("--n-exp", type=int, default=10)
    ap.add_argument("--region", choices=REGIONS, default="face")
    ap.add_argument("--unit", choices=sorted(UNITS), default="um")
    ap.add_argument("--name", default=None)
    ap.add_argument("--basis-dtype", choices=["float32", "float16"], default="float32",
                    help="float16: bases rounded to and stored as float16 (the shipped model)")
    a = ap.parse_args(argv)
    m = build_ict_model(a.source, a.out, n_id=a.n_id, n_exp=a.n_exp, region=a.region,
                        unit=a.unit, name=a.name, basis_dtype=a.basis_dtype)
    print(f"{m!r}\nsha256 {m.sha256()}\nwritten {a.out}")
    return 0
