"""`pyface3d export onnx|tensorrt` argument handling (through add_parser on a fresh
argparse parser, as the project CLI wires it)."""
import argparse
import json

import numpy as np
import pytest

from pyface3d.deploy.cli import add_parser
from pyface3d.deploy.trt_build import require_tensorrt


def run(argv):
    p = argparse.ArgumentParser(prog="pyface3d")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(argv)
    return args.fn(args)


def _tensorrt_missing():
    try:
        require_tensorrt()
    except ImportError:
        return True
    return False


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, toy_mm_path):
    d = tmp_path_factory.mktemp("cli")
    out = d / "mb.onnx"
    assert run(["export", "onnx", "--model", "mobilenet_v1_x0.5", "--out", str(out),
                "--head", "landmarks", "--morphable", str(toy_mm_path)]) == 0
    return out


def test_export_onnx_model_warns_untrained(tmp_path, toy_mm_path, capsys):
    out = tmp_path / "a.onnx"
    rc = run(["export", "onnx", "--model", "mobilenet_v1_x0.5", "--out", str(out),
              "--head", "landmarks+vertices", "--verify", "--morphable", str(toy_mm_path),
              "--json", str(tmp_path / "a.json")])
    cap = capsys.readouterr()
    assert rc == 0 and out.is_file()
    assert "UNTRAINED" in cap.err and "latency" in cap.err
    assert "verify landmarks: max abs diff" in cap.out and "UNTRAINED" in cap.out
    info = json.loads((tmp_path / "a.json").read_text())
    assert info["trained"] is False and set(info["verify"]) == {"params", "landmarks",
                                                                "vertices"}


@pytest.mark.parametrize("argv,msg", [
    (["--weights", "missing.pt"], "argument --weights"),
    (["--model", "resnet"], "argument --model: unknown model"),
    (["--model", "mobilenet_v1_x0.5", "--opset", "16"], "opset"),
    (["--model", "mobilenet_v1_x0.5", "--head", "landmark"], "head"),
])
def test_export_onnx_errors(tmp_path, toy_mm_path, capsys, argv, msg):
    rc = run(["export", "onnx", "--out", str(tmp_path / "x.onnx"),
              "--morphable", str(toy_mm_path)] + argv)
    assert rc == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_export_onnx_without_default_weights(tmp_path, monkeypatch, capsys):
    from pyface3d.pipeline import reconstructor
    monkeypatch.setattr(reconstructor, "default_weights_path", lambda: None)
    assert run(["export", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "no default weights" in capsys.readouterr().err


def test_export_onnx_argparse_errors(tmp_path):
    with pytest.raises(SystemExit):   # --weights and --model together
        run(["export", "onnx", "--weights", "a.pt", "--model", "shufflenet3d", "--out", "x.onnx"])
    with pytest.raises(SystemExit):   # no target
        run(["export"])


@pytest.mark.parametrize("extra,msg", [
    (["--calib", "crops"], "only used with --int8"),
    (["--batch", "8,1,64"], "min <= opt <= max"),
    (["--batch", "x"], "--batch"),
    (["--int8"], "--calib DIR"),
    (["--int8", "--calib", "no_such_dir"], "not a directory"),
    (["--workspace", "0"], "--workspace"),
])
def test_export_tensorrt_argument_errors(onnx_file, tmp_path, capsys, extra, msg):
    rc = run(["export", "tensorrt", "--onnx", str(onnx_file), "--out",
              str(tmp_path / "x.engine")] + extra)
    assert rc == 2 and msg in capsys.readouterr().err


def test_export_tensorrt_file_errors(onnx_file, tmp_path, capsys, toy_mm_path):
    assert run(["export", "tensorrt", "--onnx", str(tmp_path / "none.onnx"), "--out",
                str(tmp_path / "x.engine")]) == 2
    assert "argument --onnx" in capsys.readouterr().err
    assert run(["export", "tensorrt", "--onnx", str(onnx_file), "--out",
                str(tmp_path / "x.plan")]) == 2
    assert "must end in .engine" in capsys.readouterr().err
    static = tmp_path / "static.onnx"
    assert run(["export", "onnx", "--model", "mobilenet_v1_x0.5", "--out", str(static),
                "--static-batch", "--morphable", str(toy_mm_path)]) == 0
    capsys.readouterr()
    assert run(["export", "tensorrt", "--onnx", str(static), "--out",
                str(tmp_path / "x.engine"), "--batch", "1,8,64"]) == 2
    assert "static batch 1" in capsys.readouterr().err
    fp16 = tmp_path / "h.onnx"
    assert run(["export", "onnx", "--model", "mobilenet_v1_x0.5", "--out", str(fp16),
                "--fp16", "--morphable", str(toy_mm_path)]) == 0
    capsys.readouterr()
    assert run(["export", "tensorrt", "--onnx", str(fp16), "--out",
                str(tmp_path / "x.engine")]) == 2
    assert "exported with --fp16" in capsys.readouterr().err


@pytest.mark.skipif(not _tensorrt_missing(), reason="TensorRT is installed here")
def test_export_tensorrt_without_tensorrt(onnx_file, tmp_path, capsys):
    crops = tmp_path / "crops"
    crops.mkdir()
    np.save(crops / "c.npy", np.zeros((4, 3, 120, 120), np.float32))
    for extra in ([], ["--fp16"], ["--int8", "--calib", str(crops), "--batch", "1,2,4"]):
        rc = run(["export", "tensorrt", "--onnx", str(onnx_file), "--out",
                  str(tmp_path / "x.engine"), "--cache-dir", str(tmp_path / "cache")] + extra)
        err = capsys.readouterr().err
        assert rc == 2 and "TensorRT" in err and "pip install tensorrt" in err
        assert not (tmp_path / "x.engine").exists()
