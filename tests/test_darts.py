import numpy as np
import pytest
import torch

import spaces
from spaces.darts import DARTS_V1, DARTS_V2
from spaces.darts.model import count_parameters

V2_TEXT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
           "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
           "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
           "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


@pytest.fixture(scope="module")
def space():
    return spaces.get_space("darts")


def test_pasted_genotype_round_trips(space):
    arch = space.from_json(V2_TEXT)
    assert arch == space.from_json(DARTS_V2)
    assert space.to_text(arch) == V2_TEXT
    assert space.from_json(space.to_json(arch)) == arch
    import json
    assert space.from_json(json.dumps(space.to_json(arch))) == arch
    assert space.to_json(arch)["normal_concat"] == [2, 3, 4, 5]


def test_key_ignores_the_order_of_a_nodes_two_inputs(space):
    arch = space.from_json(DARTS_V2)
    normal = list(DARTS_V2["normal"])
    normal[0], normal[1] = normal[1], normal[0]
    normal[6], normal[7] = normal[7], normal[6]
    swapped = space.from_json({"normal": normal, "reduce": DARTS_V2["reduce"]})
    assert swapped != arch and space.key(swapped) == space.key(arch)
    assert space.to_graph(swapped) == space.to_graph(arch)
    assert space.key(space.from_json(DARTS_V1)) != space.key(arch)


def test_sample_and_mutate_stay_valid_and_differ(space):
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.key(child) != space.key(arch)
        space.from_json(space.to_json(child))  # valid: raises otherwise
        changed = sum(a != b for c in ("normal", "reduce") for a, b in zip(getattr(arch, c), getattr(child, c)))
        assert changed == 1  # one operation or one input of one edge
    assert space.count() == (1 * 3 * 6 * 10 * 7 ** 8) ** 2


def test_graph_form(space):
    g = space.to_graph(space.from_json(DARTS_V2))
    assert g.num_nodes == 22 and not np.tril(g.adjacency).any()
    assert [g.vocab[o] for o in g.ops[:2]] == ["c_k-2", "c_k-1"] and g.vocab[g.ops[10]] == "output"
    assert g.adjacency[10, 11] == g.adjacency[10, 12] == 1  # the reduction cell reads the normal cell
    # normal node 5's dil_conv_3x3 reads node 2, i.e. the two operations of node 2 (graph nodes 2 and 3)
    dil = [i for i in range(11) if g.vocab[g.ops[i]] == "dil_conv_3x3"][0]
    assert g.adjacency[2:4, dil].tolist() == [1, 1] and g.adjacency[:, dil].sum() == 2


def test_darts_v2_has_3_3_million_parameters(space):
    model = space.build_model(space.from_json(DARTS_V2), dict(channels=36, layers=20, auxiliary=True))
    assert count_parameters(model) == 3_349_342  # DARTS reports 3.3 M (auxiliary head excluded)
    assert count_parameters(model, include_auxiliary=True) > count_parameters(model)


@pytest.mark.parametrize("auxiliary", [False, True])
def test_forward_backward(space, auxiliary):
    torch.manual_seed(0)
    model = space.build_model(space.sample(np.random.default_rng(3)),
                              dict(channels=8, layers=5, auxiliary=auxiliary, drop_path=0.2))
    model.train()
    out = model(torch.randn(4, 3, 32, 32))
    logits, aux = out if auxiliary else (out, None)
    assert logits.shape == (4, 10) and (aux is None or aux.shape == (4, 10))
    loss = logits.logsumexp(1).mean() + (0.4 * aux.logsumexp(1).mean() if auxiliary else 0)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if auxiliary or "auxiliary" not in n)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad, message", [
    ({"normal": DARTS_V2["normal"][:7], "reduce": DARTS_V2["reduce"]}, "normal has 7 edges; a DARTS cell has 8"),
    ({"normal": [("conv_9x9", 0)] + DARTS_V2["normal"][1:], "reduce": DARTS_V2["reduce"]},
     "unknown operation 'conv_9x9'; valid: max_pool_3x3"),
    ({"normal": DARTS_V2["normal"][:2] + [("sep_conv_3x3", 3)] + DARTS_V2["normal"][3:], "reduce": DARTS_V2["reduce"]},
     "node 3 cannot take input 3 (only earlier nodes 0..2)"),
    ({"normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 0)] + DARTS_V2["normal"][2:], "reduce": DARTS_V2["reduce"]},
     "node 2 takes input 0 twice"),
    ({"normal": DARTS_V2["normal"]}, "no 'reduce' cell"),
    ("Genotype(normal=__import__('os'))", "cannot parse the genotype"),
    ("not a genotype", "neither JSON nor Genotype"),
])
def test_malformed_genotypes_say_what_is_wrong(space, bad, message):
    with pytest.raises(spaces.InvalidArchError, match=message.replace("(", "\\(").replace(")", "\\)")):
        space.from_json(bad)


def test_export_matches_pytorch_in_onnxruntime(space, tmp_path):
    import json
    import subprocess
    import sys
    import onnxruntime
    from training.recipes.darts import DartsTrainingConfig
    from training.trainer import save_checkpoint
    arch = space.from_json(DARTS_V1)
    torch.manual_seed(0)
    model = space.build_model(arch, dict(channels=6, layers=4, auxiliary=True))
    # The layout of checkpoints written before they recorded their build config: the
    # network's shape is read from the training config.
    config = dict(DartsTrainingConfig(channels=6, layers=4).__dict__)
    save_checkpoint(tmp_path / "checkpoint.pt", {"config": config, "model": model.state_dict()})
    genotype = tmp_path / "best.json"
    genotype.write_text(json.dumps(space.to_json(arch)))
    done = subprocess.run([sys.executable, "-m", "search.export", "--arch", str(genotype), "--out", str(tmp_path / "out"),
                           "--weights", str(tmp_path / "checkpoint.pt")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert space.from_json((out / "arch.txt").read_text()) == arch
    x = torch.randn(5, 3, 32, 32)
    model.eval()
    with torch.inference_mode():
        want = model(x).numpy()
    got = onnxruntime.InferenceSession(str(out / "model.onnx")).run(None, {"images": x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    program = torch.export.load(out / "model.pt2").module()
    np.testing.assert_allclose(program(x).detach().numpy(), want, atol=1e-5)
    saved = torch.load(out / "model_state.pt", weights_only=False)
    assert saved["space"] == "darts" and saved["build"]["auxiliary"] is False
    rebuilt = space.build_model(space.from_json(saved["arch"]), saved["build"])
    rebuilt.load_state_dict(saved["state_dict"])
    rebuilt.eval()
    np.testing.assert_allclose(rebuilt(x).detach().numpy(), want, atol=1e-5)


def test_darts_v2_imagenet_network_is_the_mobile_setting(space):
    """The DARTS paper's ImageNet network: 14 cells, 48 channels, 4.7 M parameters, < 600 M MACs."""
    from torch.utils.flop_counter import FlopCounterMode
    arch = space.from_json(DARTS_V2)
    model = space.build_model(arch, dataset="imagenet").eval()
    assert len(model.cells) == 14 and model.classifier.out_features == 1000
    assert 4.65e6 < count_parameters(model) < 4.75e6  # the paper: 4.7 M
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        logits = model(torch.zeros(1, 3, 224, 224))
    assert logits.shape == (1, 1000)
    assert counter.get_total_flops() / 2 < 600e6  # the mobile setting (the paper: 574 M by its count)
    trained = space.build_model(arch, {"dataset": "imagenet", "auxiliary": True, "layers": 5, "channels": 8}).train()
    out, aux = trained(torch.randn(2, 3, 224, 224))
    assert out.shape == aux.shape == (2, 1000)
    cifar = space.build_model(arch)  # the default is unchanged
    assert count_parameters(cifar) == 3_349_342
    from narnas.errors import ConfigError
    with pytest.raises(ConfigError, match="dataset must be one of cifar10, imagenet"):
        space.build_model(arch, {"dataset": "mnist"})
