"""Parameter / MAC counts: the hand-checked counter and the table 6.2 sizes."""
import pytest
import torch
from torch import nn

from pyface3d import models


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)            # 8x8 -> 4x4
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # depthwise
        self.c3 = nn.Conv2d(8, 4, 1, groups=2)                        # grouped 1x1
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 16, 5)

    def forward(self, x):
        x = self.bn(self.c3(torch.relu(self.c2(self.c1(x)))))
        return self.fc(x.flatten(1))


def test_counter_hand_computed():
    net = Tiny()
    # c1: Cout*Ho*Wo*(Cin/g)*k*k = 8*4*4*3*9; c2: 8*16*1*9; c3: 4*16*4*1; fc: 64*5
    expected = {"c1": 8 * 16 * 27, "c2": 8 * 16 * 9, "c3": 4 * 16 * 4, "fc": 64 * 5}
    assert models.count_flops(net, (1, 3, 8, 8), by_layer=True) == expected
    assert models.count_flops(net, (1, 3, 8, 8)) == sum(expected.values()) == 5184
    assert models.count_flops(net, (3, 3, 8, 8)) == 3 * 5184  # scales with the batch
    # params: c1 8*27+8, c2 72, c3 4*4+4, bn 8, fc 64*5+5
    assert models.count_params(net) == 224 + 72 + 20 + 8 + 325


def test_counter_restores_mode_and_removes_hooks():
    net = Tiny().train()
    models.count_flops(net, (1, 3, 8, 8))
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    net.eval()
    models.count_flops(net, (1, 3, 8, 8))
    assert not net.training


def test_counter_bad_args():
    with pytest.raises(TypeError, match="model"):
        models.count_flops("net")
    with pytest.raises(ValueError, match="input_size"):
        models.count_flops(Tiny(), (1, 3, 0, 8))
    with pytest.raises(TypeError, match="model"):
        models.count_params(None)


def test_trainable_only():
    net = Tiny()
    net.fc.weight.requires_grad_(False)
    assert models.count_params(net, trainable_only=True) == models.count_params(net) - 320


# thesis table 6.2: params (M); the MAC column is checked loosely (thesis rounds to 0.01 G)
TABLE = {"shufflenet3d": (5.58, 0.12), "shufflenet3d_nose": (4.41, 0.12),
         "shufflenet3d_ca": (4.65, 0.12), "ghostnet": (3.98, 0.05),
         "mobilenet_v1_x2": (12.82, 0.70)}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_table_6_2_sizes(name):
    params_m, gmacs = TABLE[name]
    net = models.create(name)
    p = models.count_params(net) / 1e6
    tol = 0.15 if name == "shufflenet3d" else 0.05
    assert abs(p - params_m) / params_m < tol, p
    g = models.count_flops(net) / 1e9
    assert abs(g - gmacs) < 0.02, g


def test_default_within_15_percent():
    p = models.count_params(models.create("shufflenet3d"))
    assert abs(p - 5.58e6) / 5.58e6 < 0.15
    assert abs(p - 5.58e6) / 5.58e6 < 0.01  # in fact within 1%


def test_mobilenet_v1_x05_macs():
    # 3DDFA_V2 "mb05" is quoted at about 0.04 G(MAC) at 120x120
    g = models.count_flops(models.create("mobilenet_v1_x0.5")) / 1e9
    assert 0.04 <= g <= 0.05
