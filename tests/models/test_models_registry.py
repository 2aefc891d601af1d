"""Registry: every model builds, runs forward/backward at 120x120, seeds, errors."""
import pytest
import torch

from pyface3d import models

EXPECTED = {"shufflenet3d", "shufflenet3d_nose", "shufflenet3d_sk", "shufflenet3d_ca",
            "mobilenet_v2", "ghostnet", "mobilenet_v1", "mobilenet_v1_x0.5", "mobilenet_v1_x2"}


def test_list_models():
    names = models.list_models()
    assert set(names) == EXPECTED
    assert names == sorted(names)
    for n in names:
        assert isinstance(models.get_config(n), dict)
        assert models.describe(n)


def test_num_params_and_other_size():
    net = models.create("shufflenet3d", num_params=10).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 96, 128)).shape == (1, 10)


def test_unknown_name_lists_models():
    with pytest.raises(KeyError) as e:
        models.create("resnet9000")
    msg = str(e.value)
    assert "resnet9000" in msg
    for n in EXPECTED:
        assert n in msg
    with pytest.raises(KeyError):
        models.get_config("nope")


def test_unknown_kwarg():
    with pytest.raises(TypeError, match="widen_factr"):
        models.create("mobilenet_v1", widen_factr=2.0)


def test_override_config():
    net = models.create("mobilenet_v1", widen_factor=0.25)
    assert net.config["widen_factor"] == 0.25
    assert net.conv1.out_channels == 8
    assert models.get_config("mobilenet_v1")["widen_factor"] == 1.0  # entry untouched


def test_get_config_is_a_copy():
    cfg = models.get_config("shufflenet3d")
    cfg["arch"].append("3")
    assert models.get_config("shufflenet3d")["arch"] == ["33x5", "5533", "73755373", "75x7"]


@pytest.mark.parametrize("name", ["shufflenet3d", "mobilenet_v1_x0.5"])
def test_seed_is_deterministic_and_isolated(name):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = models.create(name, seed=7).state_dict()
    assert torch.equal(torch.get_rng_state(), before)  # global RNG untouched
    b = models.create(name, seed=7).state_dict()
    c = models.create(name, seed=8).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
    with pytest.raises(TypeError, match="seed"):
        models.create(name, seed="7")


@pytest.mark.parametrize("shape", [(2, 1, 120, 120), (3, 120, 120), (1, 3, 8, 8)])
def test_bad_input_shape(shape):
    net = models.create("mobilenet_v1_x0.5")
    with pytest.raises(ValueError, match="x"):
        net(torch.randn(shape))


def test_bad_input_dtype():
    net = models.create("ghostnet")
    with pytest.raises(TypeError, match="x must be a floating"):
        net(torch.zeros(1, 3, 120, 120, dtype=torch.uint8))


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="num_params"):
        models.create("shufflenet3d", num_params=0)
    with pytest.raises(ValueError, match="arch"):
        models.create("shufflenet3d", arch=["33q", "3", "3", "3"])
    with pytest.raises(ValueError, match="attention"):
        models.create("shufflenet3d", attention="cbam", attention_kw=None, last_se=False)
    with pytest.raises(ValueError, match="dropout"):
        models.create("mobilenet_v2", dropout=1.5)


def test_bench_script_smoke(tmp_path, capsys):
    import json

    from bench import bench_models

    out = tmp_path / "b.json"
    rc = bench_models.main(["--quick", "--models", "mobilenet_v1_x0.5", "--batch", "1",
                            "--min-run-time", "0.01", "--json", str(out)])
    assert rc == 0
    assert "mobilenet_v1_x0.5" in capsys.readouterr().out
    r = json.loads(out.read_text())["results"][0]
    assert r["params"] == 850398 and r["flops_2x"] == 2 * r["macs"]
    assert r["latency"]["1"]["median_s"] > 0
    with pytest.raises(SystemExit):
        bench_models.main(["--models", "nope"])
