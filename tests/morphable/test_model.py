import json

import numpy as np
import pytest
import torch

from pyface3d.morphable import MorphableModel, FORMAT_NAME, FORMAT_VERSION

from ._synth import random_model


def _manual(model, params):
    """Plain float64 formula: V = fR (mean + A a + B e) + t."""
    p = params.double()
    B = p.shape[0]
    P = p[:, :12].reshape(B, 3, 4)
    s = (model.mean.double()[None] + p[:, 12:12 + model.I] @ model.id_basis.double().T
         + p[:, 12 + model.I:] @ model.exp_basis.double().T).reshape(B, -1, 3)
    return s @ P[:, :, :3].transpose(1, 2) + P[:, None, :, 3]


def test_properties_and_dtypes():
    m = random_model(N=50, I=6, E=4, F=40, uvs=True)
    assert (m.N, m.I, m.E, m.F, m.num_params) == (50, 6, 4, 40, 22)
    assert m.mean.dtype == torch.float32 and m.triangles.dtype == torch.int32
    assert m.landmarks68.dtype == torch.int64 and m.uv_triangles.dtype == torch.int32
    # numpy float64 inputs become float32 tensors
    m2 = MorphableModel(mean=m.mean.double().numpy(), id_basis=m.id_basis.numpy(),
                        exp_basis=m.exp_basis.numpy(), triangles=m.triangles.numpy(),
                        landmarks68=m.landmarks68.numpy(), param_mean=m.param_mean.numpy(),
                        param_std=m.param_std.numpy())
    assert m2.mean.dtype == torch.float64  # float64 mean keeps the model in float64
    assert m2.sha256() == m.sha256()


def test_sha256_stable_and_sensitive():
    m = random_model()
    h = m.sha256()
    assert len(h) == 64 and h == random_model().sha256()
    assert m.to(dtype=torch.float64).sha256() == h
    m3 = random_model()
    m3.name = "other"
    m3.metadata = {"x": 1}
    assert m3.sha256() == h  # name / metadata are not hashed
    m4 = random_model()
    m4.id_basis[3, 2] += 1e-3
    assert m4.sha256() != h
    m5 = random_model()
    m5.landmarks68[0] = (m5.landmarks68[0] + 1) % m5.N
    assert m5.sha256() != h
    # same bytes in a different shape must hash differently
    m6 = random_model(I=4, E=6)
    assert m6.sha256() != random_model(I=6, E=4).sha256()


def test_sha256_device_independent(device):
    m = random_model()
    assert m.to(device).sha256() == m.sha256()
    assert m.to(device).device.type == device


def test_reconstruct_matches_formula(device):
    m = random_model().to(device)
    params = torch.randn(3, m.num_params, device=device)
    v = m.reconstruct(params)
    assert v.shape == (3, m.N, 3)
    ref = _manual(m, params)
    torch.testing.assert_close(v.double(), ref, rtol=1e-4, atol=1e-4)
    lm = m.reconstruct(params, landmarks_only=True)
    assert lm.shape == (3, 68, 3)
    torch.testing.assert_close(lm, v[:, m.landmarks68])
    # float64 copy
    m64 = m.to(dtype=torch.float64)
    torch.testing.assert_close(m64.reconstruct(params.double()), ref, rtol=1e-9, atol=1e-9)


def test_as_module(device):
    m = random_model()
    params = torch.randn(3, m.num_params)
    mod = m.as_module(landmarks_only=True).to(device)
    torch.testing.assert_close(mod(params.to(device)).cpu(),
                               m.reconstruct(params, landmarks_only=True), rtol=1e-5, atol=1e-5)
    assert m.as_module()(params).shape == (3, m.N, 3)


def test_reconstruct_gradients():
    m = random_model()
    params = torch.randn(2, m.num_params, dtype=torch.float64, requires_grad=True)
    m64 = m.to(dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: m64.reconstruct(p, landmarks_only=True),
                                    (params,), eps=1e-6, atol=1e-5)


def test_reconstruct_bad_input():
    m = random_model()
    with pytest.raises(ValueError, match="params"):
        m.reconstruct(torch.zeros(2, m.num_params + 1))
    with pytest.raises(ValueError, match="params"):
        m.reconstruct(torch.zeros(m.num_params))
    with pytest.raises(TypeError, match="params"):
        m.reconstruct(torch.zeros(2, m.num_params, dtype=torch.float64))
    with pytest.raises(TypeError, match="params"):
        m.reconstruct(np.zeros((2, m.num_params), np.float32))


def test_whiten_roundtrip_and_vertices():
    m = random_model()
    p = torch.randn(4, m.num_params)
    torch.testing.assert_close(m.unwhiten(m.whiten(p)), p, rtol=1e-5, atol=1e-5)
    v = m.vertices()
    torch.testing.assert_close(v[0], m.mean.reshape(-1, 3))
    a = torch.randn(2, m.I)
    torch.testing.assert_close(m.vertices(a)[1], (m.mean + m.id_basis @ a[1]).reshape(-1, 3),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="id_coeff"):
        m.vertices(torch.randn(2, m.I + 1))
    with pytest.raises(ValueError, match="batch"):
        m.vertices(a, torch.randn(3, m.E))


def test_big_endian_arrays():
    m = random_model()
    m2 = MorphableModel(mean=m.mean.numpy().astype(">f4"), id_basis=m.id_basis.numpy(),
                        exp_basis=m.exp_basis.numpy().astype(">f8"),
                        triangles=m.triangles.numpy().astype(">i4"),
                        landmarks68=m.landmarks68.numpy(), param_mean=m.param_mean.numpy(),
                        param_std=m.param_std.numpy())
    assert m2.sha256() == m.sha256()


@pytest.mark.parametrize("field,value,exc,match", [
    ("mean", torch.zeros(10), ValueError, "mean"),
    ("id_basis", torch.zeros(149, 6), ValueError, "id_basis"),
    ("exp_basis", torch.zeros(150), ValueError, "exp_basis"),
    ("param_std", torch.zeros(22), ValueError, "param_std"),
    ("param_mean", torch.zeros(21), ValueError, "param_mean"),
    ("triangles", torch.tensor([[0, 1, 50]]), IndexError, "triangles"),
    ("triangles", torch.tensor([[0, 1, 2, 3]]), ValueError, "triangles"),
    ("landmarks68", torch.zeros(67, dtype=torch.long), ValueError, "landmarks68"),
    ("landmarks68", torch.full((68,), -1), IndexError, "landmarks68"),
    ("triangles", torch.zeros(3, 3), TypeError, "triangles"),
    ("mean", torch.zeros(150, dtype=torch.long), TypeError, "mean"),
    ("metadata", {"a": object()}, ValueError, "metadata"),
    ("name", 3, TypeError, "name"),
])
def test_validation_errors(field, value, exc, match):
    m = random_model()
    kw = {f: getattr(m, f) for f in ("mean", "id_basis", "exp_basis", "triangles",
                                       "landmarks68", "param_mean", "param_std", "name",
                                       "metadata")}
    kw[field] = value
    with pytest.raises(exc, match=match):
        MorphableModel(**kw)


def test_validation_nan_and_uvs():
    m = random_model()
    bad = m.mean.clone()
    bad[4] = float("nan")
    with pytest.raises(ValueError, match="mean"):
        MorphableModel(bad, m.id_basis, m.exp_basis, m.triangles, m.landmarks68,
                       m.param_mean, m.param_std)
    with pytest.raises(ValueError, match="uvs"):
        MorphableModel(m.mean, m.id_basis, m.exp_basis, m.triangles, m.landmarks68,
                       m.param_mean, m.param_std, uvs=torch.zeros(5, 2))


def test_save_load_roundtrip(tmp_path):
    m = random_model(uvs=True)
    path = tmp_path / "m.npz"
    digest = m.save(path)
    assert digest == m.sha256() and path.is_file()
    assert not list(tmp_path.glob("*.tmp"))
    m2 = MorphableModel.load(path)
    assert m2.sha256() == digest and m2.name == "random"
    assert m2.metadata == {"unit": "cm", "k": [1, 2]}
    for f in ("mean", "id_basis", "exp_basis", "triangles", "landmarks68", "param_mean",
              "param_std", "uvs", "uv_triangles"):
        assert torch.equal(getattr(m2, f), getattr(m, f)), f
    assert MorphableModel.load(path, expected_sha256=digest.upper()).sha256() == digest
    with pytest.raises(ValueError, match="different morphable model"):
        MorphableModel.load(path, expected_sha256="0" * 64)
    # a float64 copy saves the same file content
    p64 = tmp_path / "m64.npz"
    assert m.to(dtype=torch.float64).save(p64) == digest
    with np.load(path) as z:
        assert str(z["format"]) == FORMAT_NAME and int(z["format_version"]) == FORMAT_VERSION
        assert z["mean"].dtype == np.float32 and z["triangles"].dtype == np.int32
        assert json.loads(str(z["metadata_json"])) == m.metadata


def test_load_device(device, tmp_path):
    m = random_model()
    m.save(tmp_path / "m.npz")
    m2 = MorphableModel.load(tmp_path / "m.npz", device=device)
    assert m2.device.type == device and m2.sha256() == m.sha256()


def _rewrite(path, out, **changes):
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    with open(out, "wb") as f:
        np.savez(f, **d)
    return out


def test_load_rejects_bad_files(tmp_path):
    m = random_model()
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path) as z:
        mean = z["mean"].copy()
    mean[0] += 1.0
    with pytest.raises(ValueError, match="checksum mismatch"):
        MorphableModel.load(_rewrite(path, tmp_path / "a.npz", mean=mean))
    with pytest.raises(ValueError, match="format_version 2"):
        MorphableModel.load(_rewrite(path, tmp_path / "b.npz",
                                     format_version=np.array(2, np.int64)))
    with pytest.raises(ValueError, match="not a pyface3d-morphable"):
        MorphableModel.load(_rewrite(path, tmp_path / "c.npz", format=np.array("other")))
    with pytest.raises(ValueError, match="lacks keys"):
        MorphableModel.load(_rewrite(path, tmp_path / "d.npz", sha256=None))
    with pytest.raises(ValueError, match="does not know"):
        MorphableModel.load(_rewrite(path, tmp_path / "e.npz", extra=np.zeros(2)))
    with pytest.raises(ValueError, match="dtype"):
        MorphableModel.load(_rewrite(path, tmp_path / "f.npz",
                                     mean=np.zeros(mean.shape, np.float64)))
    # object arrays would need pickle: refused
    with pytest.raises(ValueError, match="pickl"):
        MorphableModel.load(_rewrite(path, tmp_path / "g.npz",
                                     name=np.array([{"x": 1}], dtype=object)))
    (tmp_path / "h.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="npz"):
        MorphableModel.load(tmp_path / "h.npz")
    with pytest.raises(FileNotFoundError):
        MorphableModel.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"\.npz"):
        m.save(tmp_path / "m.bin")
