"""Tests of pyface3d.ops.morphable (fused morphable-model reconstruction)."""
import pytest
import torch

from pyface3d.ops import _lib
from pyface3d.ops import _reference_morphable as ref
from pyface3d.ops import morphable

needs_c = pytest.mark.skipif(not _lib.HAS_C, reason="pyface3d._C is not built")


def make(B=3, N=50, I=6, E=4, dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype).to(device)

    return dict(pose=r(B, 3, 4), id_coeff=r(B, I), exp_coeff=r(B, E), mean=r(3 * N),
                id_basis=r(3 * N, I), exp_basis=r(3 * N, E))


def args(d, ids=None):
    return (d["pose"], d["id_coeff"], d["exp_coeff"], d["mean"], d["id_basis"], d["exp_basis"],
            ids)


TOL = {torch.float32: dict(rtol=1e-5, atol=1e-4), torch.float64: dict(rtol=1e-12, atol=1e-10)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B", [1, 2, 3, 8, 67])
@pytest.mark.parametrize("with_ids", [False, True])
def test_vs_reference(device, dtype, B, with_ids):
    d = make(B=B, N=301, I=40, E=10, dtype=dtype, device=device)
    ids = torch.randint(0, 301, (68,), device=device) if with_ids else None
    out = morphable.morphable_reconstruct(*args(d, ids))
    exp = ref.morphable_reconstruct(*args(d, ids))
    assert out.shape == (B, 68 if with_ids else 301, 3)
    assert out.is_contiguous()
    torch.testing.assert_close(out, exp, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("I,E", [(199, 100), (0, 10), (40, 0), (0, 0)])
def test_sizes_of_bases(device, dtype, I, E):
    d = make(B=5, N=20, I=I, E=E, dtype=dtype, device=device)
    out = morphable.morphable_reconstruct(*args(d))
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == torch.float32 else TOL[dtype]
    torch.testing.assert_close(out, ref.morphable_reconstruct(*args(d)), **tol)


def test_int32_ids_and_repeats(device):
    d = make(B=4, N=30, device=device)
    ids = torch.tensor([0, 29, 5, 5, 0], dtype=torch.int32, device=device)
    torch.testing.assert_close(morphable.morphable_reconstruct(*args(d, ids)),
                               ref.morphable_reconstruct(*args(d, ids.long())))


def test_known_answers():
    d = make(B=2, N=10)
    d["id_coeff"].zero_()
    d["exp_coeff"].zero_()
    eye = torch.zeros(2, 3, 4, dtype=torch.float64)
    eye[:, :, :3] = torch.eye(3, dtype=torch.float64)
    d["pose"] = eye.clone()
    mean3 = d["mean"].view(10, 3)
    out = morphable.morphable_reconstruct(*args(d))
    torch.testing.assert_close(out, mean3.expand(2, 10, 3))  # identity pose, zero coeffs
    t = torch.tensor([[1.0, -2.0, 3.5], [0.0, 0.5, -1.0]], dtype=torch.float64)
    d["pose"] = eye.clone()
    d["pose"][:, :, 3] = t
    out = morphable.morphable_reconstruct(*args(d))
    torch.testing.assert_close(out, mean3[None] + t[:, None])  # pure translation
    d["pose"] = eye.clone() * torch.tensor([2.0, 0.25], dtype=torch.float64)[:, None, None]
    out = morphable.morphable_reconstruct(*args(d))
    torch.testing.assert_close(out, mean3[None] * torch.tensor([2.0, 0.25],
                                                               dtype=torch.float64)[:, None, None])
    # one unit coefficient adds that basis column
    d["pose"] = eye.clone()
    d["id_coeff"][0, 2] = 1.0
    out = morphable.morphable_reconstruct(*args(d))
    torch.testing.assert_close(out[0], mean3 + d["id_basis"][:, 2].view(10, 3))


@pytest.mark.parametrize("with_ids", [False, True])
def test_gradcheck(device, with_ids):
    d = make(B=3, N=9, I=4, E=3, device=device)
    ids = torch.tensor([0, 8, 3, 3], device=device) if with_ids else None
    p, a, e = (d[k].clone().requires_grad_() for k in ("pose", "id_coeff", "exp_coeff"))
    fn = lambda p, a, e: morphable.morphable_reconstruct(  # noqa: E731
        p, a, e, d["mean"], d["id_basis"], d["exp_basis"], ids)
    assert torch.autograd.gradcheck(fn, (p, a, e))


@pytest.mark.parametrize("B", [1, 2, 9, 70])
def test_backward_vs_autograd_reference(device, B):
    d = make(B=B, N=150, I=40, E=10, device=device)
    ids = torch.randint(0, 150, (68,), device=device)
    for vi in (None, ids):
        g = torch.randn(B, 150 if vi is None else 68, 3, dtype=torch.float64, device=device)
        grads = []
        for f in (morphable.morphable_reconstruct, ref.morphable_reconstruct):
            p, a, e = (d[k].clone().requires_grad_() for k in ("pose", "id_coeff", "exp_coeff"))
            f(p, a, e, d["mean"], d["id_basis"], d["exp_basis"], vi).backward(g)
            grads.append((p.grad, a.grad, e.grad))
        for x, y in zip(*grads):
            torch.testing.assert_close(x, y)


def test_backward_deterministic():
    d = make(B=9, N=3000, I=40, E=10, dtype=torch.float32)
    g = torch.randn(9, 3000, 3)
    r1 = torch.ops.pyface3d._morphable_reconstruct_backward(g, *args(d)) if _lib.HAS_C else None
    if r1 is None:
        pytest.skip("pyface3d._C is not built")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        r2 = torch.ops.pyface3d._morphable_reconstruct_backward(g, *args(d))
    finally:
        torch.set_num_threads(old)
    for x, y in zip(r1, r2):
        assert torch.equal(x, y)


def test_params_form_and_module(device):
    d = make(B=4, N=40, I=40, E=10, device=device)
    params = torch.cat([d["pose"].reshape(4, 12), d["id_coeff"], d["exp_coeff"]], 1)
    assert params.shape[1] == 62
    exp = ref.morphable_reconstruct(*args(d))
    out = morphable.morphable_reconstruct_params(params, d["mean"], d["id_basis"], d["exp_basis"])
    torch.testing.assert_close(out, exp)
    torch.testing.assert_close(
        ref.morphable_reconstruct_params(params, d["mean"], d["id_basis"], d["exp_basis"]), exp)
    mod = morphable.MorphableReconstruct(d["mean"], d["id_basis"], d["exp_basis"])
    assert set(dict(mod.named_buffers())) >= {"mean", "id_basis", "exp_basis"}
    assert not list(mod.parameters())
    torch.testing.assert_close(mod(params), exp)
    torch.testing.assert_close(mod(d["pose"], d["id_coeff"], d["exp_coeff"]), exp)
    ids = torch.arange(0, 40, 3, device=device)
    mod68 = morphable.MorphableReconstruct(d["mean"], d["id_basis"], d["exp_basis"], ids)
    torch.testing.assert_close(mod68(params), exp[:, ids])
    # gradients flow through the params form
    pp = params.clone().requires_grad_()
    mod(pp).sum().backward()
    assert pp.grad is not None and pp.grad.shape == params.shape
    with pytest.raises(ValueError, match="params"):
        morphable.morphable_reconstruct_params(params[:, :61], d["mean"], d["id_basis"],
                                               d["exp_basis"])


def test_empty(device):
    d = make(B=0, N=20, device=device)
    out = morphable.morphable_reconstruct(*args(d))
    assert out.shape == (0, 20, 3)
    d = make(B=3, N=20, device=device)
    ids = torch.zeros(0, dtype=torch.long, device=device)
    assert morphable.morphable_reconstruct(*args(d, ids)).shape == (3, 0, 3)
    d = make(B=2, N=0, device=device)
    assert morphable.morphable_reconstruct(*args(d)).shape == (2, 0, 3)
    if _lib.HAS_C:
        d = make(B=2, N=5, device=device)
        gp, gi, ge = torch.ops.pyface3d._morphable_reconstruct_backward(
            torch.zeros(2, 0, 3, dtype=torch.float64, device=device), *args(d, ids))
        assert gp.shape == (2, 3, 4) and not gp.any() and gi.shape == (2, 6) and not gi.any()
        p = make(B=0, N=5, device=device)["pose"].requires_grad_()
        d = make(B=0, N=5, device=device)
        morphable.morphable_reconstruct(p, *args(d)[1:]).sum().backward()
        assert p.grad.shape == (0, 3, 4)


def test_non_contiguous(device):
    d = make(B=5, N=30, I=7, E=5, device=device)
    nc = dict(
        pose=d["pose"].transpose(1, 2).contiguous().transpose(1, 2),
        id_coeff=d["id_coeff"].t().contiguous().t(),
        exp_coeff=torch.stack([d["exp_coeff"], d["exp_coeff"]], 2)[..., 0],
        mean=torch.stack([d["mean"], d["mean"]], 1)[:, 1],
        id_basis=d["id_basis"].t().contiguous().t(),
        exp_basis=torch.cat([d["exp_basis"], d["exp_basis"]], 1).narrow(1, 5, 5),
    )
    assert not nc["pose"].is_contiguous() and not nc["mean"].is_contiguous()
    assert not nc["id_basis"].is_contiguous() and not nc["exp_basis"].is_contiguous()
    assert not nc["exp_coeff"].is_contiguous()
    ids = torch.arange(30, device=device).repeat_interleave(2)[::2]  # strided view
    for vi in (None, ids):
        out = morphable.morphable_reconstruct(*args(nc, vi))
        assert out.is_contiguous()
        torch.testing.assert_close(out, ref.morphable_reconstruct(*args(d, vi)))


def test_bad_inputs():
    d = make(B=2, N=10, I=4, E=3)
    f = morphable.morphable_reconstruct

    def call(**kw):
        a = dict(d)
        ids = kw.pop("vertex_ids", None)
        a.update(kw)
        return f(*args(a, ids))

    with pytest.raises(ValueError, match="id_basis"):
        call(id_basis=torch.randn(27, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="exp_basis"):
        call(exp_basis=torch.randn(33, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mean"):
        call(mean=torch.randn(31, dtype=torch.float64))
    with pytest.raises(ValueError, match="id_coeff"):
        call(id_coeff=torch.randn(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="exp_coeff"):
        call(exp_coeff=torch.randn(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="pose"):
        call(pose=torch.randn(2, 12, dtype=torch.float64))
    with pytest.raises(IndexError, match="vertex_ids"):
        call(vertex_ids=torch.tensor([0, 10]))
    with pytest.raises(IndexError, match="vertex_ids"):
        call(vertex_ids=torch.tensor([-1, 3]))
    with pytest.raises(TypeError, match="vertex_ids"):
        call(vertex_ids=torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="id_basis"):
        call(id_basis=d["id_basis"].float())
    with pytest.raises(TypeError, match="pose"):
        call(pose=d["pose"].to(torch.int32))
    for name in ("mean", "id_basis", "exp_basis"):
        with pytest.raises(ValueError, match=f"{name}.*detach"):
            call(**{name: d[name].clone().requires_grad_()})
    # under no_grad a basis that requires grad is fine (inference with Parameters)
    with torch.no_grad():
        call(id_basis=d["id_basis"].clone().requires_grad_())
    with pytest.raises(ValueError, match="params"):
        morphable.morphable_reconstruct_params(torch.randn(2, 20, dtype=torch.float64),
                                               d["mean"], d["id_basis"], d["exp_basis"])


@needs_c
def test_bad_inputs_raw_op():
    d = make(B=2, N=10, I=4, E=3)
    op = torch.ops.pyface3d.morphable_reconstruct
    # the autograd registration also refuses a basis that requires grad
    with pytest.raises(ValueError, match="exp_basis"):
        a = dict(d, exp_basis=d["exp_basis"].clone().requires_grad_())
        op(*args(a))
    bw = torch.ops.pyface3d._morphable_reconstruct_backward
    with pytest.raises(ValueError, match="grad_vertices"):
        bw(torch.zeros(2, 9, 3, dtype=torch.float64), *args(d))
    with pytest.raises(TypeError, match="grad_vertices"):
        bw(torch.zeros(2, 10, 3), *args(d))


def test_reference_bad_inputs():
    d = make(B=2, N=10, I=4, E=3)
    with pytest.raises(IndexError, match="vertex_ids"):
        ref.morphable_reconstruct(*args(d, torch.tensor([10])))
    with pytest.raises(ValueError, match="id_coeff"):
        ref.morphable_reconstruct(d["pose"], d["id_coeff"][:, :3], *args(d)[2:])


@pytest.mark.cuda
def test_mixed_devices():
    d = make(B=2, N=10, device="cuda")
    with pytest.raises(RuntimeError, match="mean"):
        morphable.morphable_reconstruct(*args(dict(d, mean=d["mean"].cpu())))
    with pytest.raises(RuntimeError, match="vertex_ids"):
        morphable.morphable_reconstruct(*args(d, torch.tensor([0, 1])))


@needs_c
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_ids", [False, True])
def test_opcheck(device, dtype, with_ids):
    d = make(B=3, N=12, I=5, E=2, dtype=dtype, device=device)
    ids = torch.tensor([0, 11, 4], device=device) if with_ids else None
    a = list(args(d, ids))
    for i in range(3):
        a[i] = a[i].clone().requires_grad_()
    torch.library.opcheck(torch.ops.pyface3d.morphable_reconstruct.default, tuple(a))
    g = torch.randn(3, 3 if with_ids else 12, 3, dtype=dtype, device=device)
    torch.library.opcheck(torch.ops.pyface3d._morphable_reconstruct_backward.default,
                          (g,) + args(d, ids))


@needs_c
def test_compile_fullgraph():
    d = make(B=2, N=10, dtype=torch.float32)
    fn = torch.compile(lambda *a: morphable.morphable_reconstruct(*a) * 2, fullgraph=True,
                       backend="eager")
    torch.testing.assert_close(fn(*args(d)[:6]), 2 * ref.morphable_reconstruct(*args(d)))
