"""Attention layers, channel shuffle, ShuffleNet units, MobileNetV1 key names."""
import pytest
import torch

from pyface3d import models
from pyface3d.models import CALayer, SELayer, SKLayer, ShuffleUnit, channel_shuffle


@pytest.mark.parametrize("layer", [SELayer(24), SELayer(24, gate="hsigmoid"), SKLayer(24),
                                   CALayer(24), CALayer(24, reduction=4)])
def test_attention_shapes(layer):
    x = torch.randn(2, 24, 9, 13)
    y = layer(x)
    assert y.shape == x.shape
    y.sum().backward()


def test_se_gate_bounds():
    se = SELayer(16)
    x = torch.rand(2, 16, 5, 5) + 0.1
    y = se(x)
    ratio = y / x  # per-channel gate in (0, 1), constant over space
    assert (ratio > 0).all() and (ratio < 1).all()
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))


def test_ca_gate_bounds():
    ca = CALayer(16)
    x = torch.rand(2, 16, 6, 7) + 0.1
    r = ca(x) / x
    assert (r > 0).all() and (r < 1).all()


def test_sk_weights_sum_to_one_for_identical_branches():
    sk = SKLayer(16, dilations=(1, 1))
    sk.branches[1].load_state_dict(sk.branches[0].state_dict())
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(sk(x), sk.branches[0](x))


def test_attention_bad_args():
    with pytest.raises(ValueError, match="channels"):
        SELayer(0)
    with pytest.raises(ValueError, match="dilations"):
        SKLayer(8, dilations=(1,))
    with pytest.raises(ValueError, match="gate"):
        SELayer(8, gate="tanh")


def test_channel_shuffle():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="divisible"):
        channel_shuffle(torch.zeros(1, 5, 1, 1), 2)


@pytest.mark.parametrize("kind", ["3", "5", "7", "x"])
@pytest.mark.parametrize("attention", ["se", "sk", "ca", "none"])
def test_shuffle_unit_shapes(kind, attention):
    x = torch.randn(2, 16, 12, 12)
    down = ShuffleUnit(16, 40, kind, 2, "relu", attention)
    y = down(x)
    assert y.shape == (2, 40, 6, 6)
    same = ShuffleUnit(40, 40, kind, 1, "hswish", attention)
    assert same(y).shape == (2, 40, 6, 6)


def test_shuffle_unit_stride1_keeps_half():
    unit = ShuffleUnit(8, 8, "3", 1, "relu", "none").eval()
    x = torch.randn(1, 8, 4, 4)
    y = unit(x)
    # after the shuffle, the even channels are the untouched first half
    torch.testing.assert_close(y[:, 0::2], x[:, :4])


def test_shuffle_unit_bad_args():
    with pytest.raises(ValueError, match="cin == cout"):
        ShuffleUnit(8, 16, "3", 1)
    with pytest.raises(ValueError, match="kind"):
        ShuffleUnit(8, 16, "9", 2)
    with pytest.raises(ValueError, match="stride"):
        ShuffleUnit(8, 16, "3", 3)


def test_mobilenet_v1_3ddfa_keys(tmp_path):
    net = models.create("mobilenet_v1_x0.5")
    sd = net.state_dict()
    for k in ["conv1.weight", "bn1.running_mean", "dw2_1.conv_dw.weight", "dw2_1.bn_dw.weight",
              "dw5_6.conv_sep.weight", "dw6.bn_sep.running_var", "fc.weight", "fc.bias"]:
        assert k in sd, k
    assert sd["dw6.conv_sep.weight"].shape == (512, 512, 1, 1)
    assert sd["fc.weight"].shape == (62, 512)
    # a DataParallel-style checkpoint ("module." keys) loads after strip_module_prefix
    path = tmp_path / "mb05.pth"
    torch.save({"module." + k: v + 1 if v.is_floating_point() else v for k, v in sd.items()},
               path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    other = models.create("mobilenet_v1_x0.5")
    other.load_state_dict(models.strip_module_prefix(loaded), strict=True)
    torch.testing.assert_close(other.fc.bias, net.fc.bias + 1)


def test_load_3ddfa_checkpoint_layout(tmp_path):
    # 3DDFA_V2 layout: {"state_dict": {"module.<key>": tensor}}, no num_batches_tracked,
    # 3DDFA v1 name fc_param.* for the last layer
    src = models.create("mobilenet_v1_x0.5", seed=1)
    sd = {}
    for k, v in src.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        sd["module." + k.replace("fc.", "fc_param.")] = v
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": sd}, path)
    ck = torch.load(path, map_location="cpu", weights_only=True)
    dst = models.load_3ddfa_state_dict(models.create("mobilenet_v1_x0.5", seed=2), ck)
    x = torch.randn(1, 3, 120, 120)
    torch.testing.assert_close(dst.eval()(x), src.eval()(x))
    del sd["module.dw6.conv_sep.weight"]
    with pytest.raises(KeyError, match="dw6.conv_sep.weight"):
        models.load_3ddfa_state_dict(models.create("mobilenet_v1_x0.5"), {"state_dict": sd})
    with pytest.raises(TypeError, match="checkpoint"):
        models.load_3ddfa_state_dict(dst, [1, 2])
