"""MaxNormConstraint: norms after an optimizer step, written in place."""
import pytest
import torch
from torch import nn

from constraints import MaxNormConstraint


def network():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 6, (1, 5)), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 3))


def test_norms_of_each_output_unit_are_clipped_in_place():
    net = network()
    conv = net[0].weight
    with torch.no_grad():
        conv.mul_(10)
        conv[0].fill_(0.01)  # one small row, which must stay untouched
    before = conv.detach().clone()
    pointer = conv.data_ptr()
    MaxNormConstraint(1.5, '0')(net)
    norms = conv.detach().flatten(1).norm(dim=1)
    assert conv.data_ptr() == pointer  # the optimizer's tensor, not a copy
    assert torch.allclose(norms[1:], torch.full((5,), 1.5), atol=1e-5)
    assert torch.equal(conv[0], before[0])
    # direction kept: clipped rows are positive multiples of the original rows
    ratio = conv[1].flatten() / before[1].flatten()
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    # the Linear layer (name '3') does not match the glob '0'
    assert torch.equal(net[3].weight, network()[3].weight)


def test_constraint_inside_a_training_step():
    net = network()
    opt = torch.optim.SGD(net.parameters(), lr=100.0)  # a huge step blows the norms up
    constraint = MaxNormConstraint(0.5, '*')
    x = torch.randn(8, 4, 1, 20)
    loss = net(x).pow(2).sum()
    loss.backward()
    opt.step()
    assert net[0].weight.flatten(1).norm(dim=1).max() > 0.5
    constraint(net)
    for layer in (net[0], net[3]):
        assert layer.weight.flatten(1).norm(dim=1).max() <= 0.5 + 1e-6
    assert opt.param_groups[0]['params'][0] is net[0].weight


def test_hand_computed_norm():
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
    MaxNormConstraint(1.0, '')(lin)  # the root module's qualified name is ''
    assert torch.allclose(lin.weight, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_glob_that_matches_nothing_names_the_modules():
    with pytest.raises(ValueError, match=r"'conv\*'.*\['0', '3'\]"):
        MaxNormConstraint(3, 'conv*')(network())


@pytest.mark.parametrize('value', [0, -1, 'x', None])
def test_bad_max_norm(value):
    with pytest.raises(ValueError, match='max_norm'):
        MaxNormConstraint(value, '*')


def test_glob_over_weight_names_selects_the_same_modules():
    by_module, by_weight = network(), network()
    with torch.no_grad():
        for net in (by_module, by_weight):
            net[0].weight.mul_(10)
            net[3].weight.mul_(10)
    MaxNormConstraint(1.0, '0')(by_module)
    MaxNormConstraint(1.0, '0.weight')(by_weight)
    assert torch.equal(by_module[0].weight, by_weight[0].weight)
    assert torch.equal(by_module[3].weight, by_weight[3].weight)
    everything = network()
    MaxNormConstraint(0.1, '*.weight')(everything)
    assert everything[3].weight.flatten(1).norm(dim=1).max() <= 0.1 + 1e-6
