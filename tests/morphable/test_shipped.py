"""The run-time assets that ship inside the package (pyface3d/assets)."""
import hashlib
import pathlib

import numpy as np
import pytest

from pyface3d.morphable import MorphableModel, resolve
from tests.conftest import shared_dir

ASSETS = pathlib.Path(__file__).resolve().parents[2] / "pyface3d" / "assets"
ICT_SHA256 = "39d00ad09c42ceeb0fe1f339225fbce781b2c9a1f02f7bf0be4bd68876f98977"


def test_checksums_and_licences():
    lines = (ASSETS / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert set(listed) == {"ict_face_40_10.npz", "yunet_n_320_320.onnx", "pyface3d_default.pt"}
    for name, digest in listed.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in (ASSETS / "LICENSE-ICT-FaceKit.txt").read_text()
    assert "Apache License" in (ASSETS / "LICENSE-YuNet.txt").read_text()
    total = sum(p.stat().st_size for p in ASSETS.iterdir())
    assert total <= 15 * 2 ** 20  # the package's asset budget


def test_resolve_uses_the_shipped_model(monkeypatch, tmp_path):
    monkeypatch.setenv("PYFACE3D_CACHE", str(tmp_path))  # no cache, no source needed
    monkeypatch.setenv("PYFACE3D_SHARED", str(tmp_path / "none"))
    m = resolve("ict")
    assert m.sha256() == ICT_SHA256 and (m.N, m.I, m.E) == (9409, 40, 10)
    assert m.uvs is not None and m.metadata.get("basis_precision") == "float16"


def test_the_shipped_model_is_reproducible_from_ict_facekit():
    src = shared_dir() / "assets" / "ict-facekit" / "ict_facekit_face_head.npz"
    if not src.is_file():
        pytest.skip(f"needs ICT-FaceKit at {src} (PYFACE3D_SHARED)")
    from pyface3d.morphable.builder import build_ict_model
    rebuilt = build_ict_model(str(src), None, basis_dtype="float16", progress=False)
    shipped = MorphableModel.load(ASSETS / "ict_face_40_10.npz")
    a, b = rebuilt.canonical_arrays(), shipped.canonical_arrays()
    assert set(a) == set(b)
    for k in a:  # to its stored precision: bit for bit
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert rebuilt.sha256() == ICT_SHA256


def test_float16_storage_round_trip(tmp_path):
    m = MorphableModel.load(ASSETS / "ict_face_40_10.npz")
    m.save(tmp_path / "a.npz", basis_dtype="float16")
    assert MorphableModel.load(tmp_path / "a.npz").sha256() == m.sha256()
    import dataclasses
    bumped = dataclasses.replace(m, id_basis=m.id_basis * (1 + 1e-6))
    with pytest.raises(ValueError, match="quantized"):
        bumped.save(tmp_path / "b.npz", basis_dtype="float16")
    with pytest.raises(ValueError, match="basis_dtype"):
        m.save(tmp_path / "c.npz", basis_dtype="int8")
