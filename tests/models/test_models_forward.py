"""Forward (B=2, 3x120x120 -> (2, 62)) and backward of every registry network."""
import pytest
import torch

from pyface3d import models

SHUFFLE = ["shufflenet3d", "shufflenet3d_nose", "shufflenet3d_sk", "shufflenet3d_ca"]
BASELINES = ["mobilenet_v2", "ghostnet", "mobilenet_v1", "mobilenet_v1_x0.5", "mobilenet_v1_x2"]


@pytest.mark.parametrize("name", SHUFFLE + BASELINES)
def test_forward_backward(name):
    torch.manual_seed(0)
    net = models.create(name)
    assert net.model_name == name and isinstance(net.config, dict)
    x = torch.randn(2, 3, 120, 120)
    y = net(x)
    assert y.shape == (2, 62) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    if name == "mobilenet_v1_x0.5":  # cheap: check eval mode has no batch coupling
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x[:1]), net(x)[:1], rtol=1e-4, atol=1e-5)
