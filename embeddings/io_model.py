"""arch2vec extended with input-output information (section 3.3 of the input-output paper).

The arch2vec VAE encodes the architecture into its latent matrix Z (and decodes it, the
first output); Z flattened goes through a dense layer to a network vector. An image branch
(3x3 conv-BN-ReLU blocks, stride 2 at the end of each, global average pooling) makes an
image vector; both, concatenated, pass through dense layers that predict the network's
preprocessed pooled features on that image (the second output). Training alternates
``labelled_batches`` batches of (network, image, features) - loss: the VAE loss + L1 on the
features - with ``unlabelled_batches`` batches of the space's architectures (the VAE loss).

The saved file is an arch2vec model file (``embeddings encode``, the ``arch2vec``
predictor and the latent strategies read it) with the rest of the model beside it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from narnas.files import atomic_torch_save
from narnas.progress import Progress, interactive

from predictor.errors import PredictorError
from .embedding import PretrainedArch2Vec, graph_arrays
from .io_features import fit_normaliser, normalise
from .model import Arch2Vec, Arch2VecConfig


@dataclass
class IOModelConfig(Arch2VecConfig):
    epochs: int = 30
    image_channels: tuple = (32, 64, 128)  # one conv block per entry
    network_dim: int = 128  # the dense layer on the flattened Z
    head_hidden: int = 256
    labelled_batches: int = 300
    unlabelled_batches: int = 200
    # labelled (network, image) pairs seen per epoch; 0 = all of them (the paper's epoch)
    pairs_per_epoch: int = 0
    eval_pairs: int = 20_000  # (network, image) pairs drawn for each validation loss

    def validate(self):
        super().validate()
        if not self.image_channels or min(self.image_channels) < 1:
            raise PredictorError(f"image_channels must be positive widths, got {self.image_channels}")
        if min(self.network_dim, self.head_hidden, self.labelled_batches, self.eval_pairs) < 1 \
                or self.unlabelled_batches < 0 or self.pairs_per_epoch < 0:
            raise PredictorError("network_dim, head_hidden, labelled_batches, eval_pairs must be >= 1, "
                                 "unlabelled_batches and pairs_per_epoch >= 0")
        if self.device != "cpu":
            # the trainer keeps its tensors on the CPU; refuse rather than silently ignore a GPU
            raise PredictorError(f"io-train runs on the CPU only (device={self.device!r} given); the IO "
                                 "dataset's network trainings are what use GPUs (io_data build --gpus-per-trial)")


class ImageBranch(nn.Module):
    def __init__(self, channels):
        super().__init__()
        blocks, c_in = [], 3
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = c_in

    def forward(self, images):
        return self.blocks(images).mean(dim=(2, 3))


class IOArch2Vec(nn.Module):
    def __init__(self, num_classes: int, max_nodes: int, feature_dim: int, cfg: IOModelConfig):
        super().__init__()
        self.vae = Arch2Vec(num_classes, max_nodes, cfg)
        self.network = nn.Sequential(nn.Linear(max_nodes * cfg.latent_dim, cfg.network_dim), nn.ReLU())
        self.image = ImageBranch(cfg.image_channels)
        self.head = nn.Sequential(nn.Linear(cfg.network_dim + self.image.out_dim, cfg.head_hidden), nn.ReLU(),
                                  nn.Linear(cfg.head_hidden, cfg.head_hidden), nn.ReLU(),
                                  nn.Linear(cfg.head_hidden, feature_dim))

    def predict_features(self, z: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.network(z.flatten(1)), self.image(images)], dim=1))

    def labelled_loss(self, ops, adjacency, images, targets, gen, kl_weight):
        """(VAE loss + L1 on the features, parts) for a batch of (network, image, target)."""
        mean, log_var, z = self.vae.sample(ops, adjacency, gen)
        op_logits, adj_logits = self.vae.decoder(z)
        vae_loss, parts = self.vae.loss_from(ops, adjacency, op_logits, adj_logits, mean, log_var, kl_weight)
        l1 = (self.predict_features(z, images) - targets).abs().mean()
        return vae_loss + l1, dict(parts, l1=float(l1.detach()))


def _prepare_images(x: np.ndarray) -> torch.Tensor:
    from training.datasets.cifar10 import MEAN, STD
    return torch.from_numpy(np.ascontiguousarray(((x.astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)))


@dataclass
class IOSplits:
    """(network rows, image set) of each labelled split; image sets are 'val' or 'test'."""

    train: np.ndarray
    unseen_networks: np.ndarray
    unseen_images: np.ndarray  # 10% of the training networks, shown the test images
    test_networks: np.ndarray  # the other 90%, on the test images


def split_networks(networks: list[dict], seed: int) -> IOSplits:
    train = np.array([i for i, n in enumerate(networks) if n["split"] == "train"])
    val = np.array([i for i, n in enumerate(networks) if n["split"] == "val"])
    if len(train) < 2:
        raise PredictorError(f"the dataset has {len(train)} finished training networks; at least 2 are needed")
    shuffled = np.random.default_rng([seed, 61]).permutation(train)
    cut = max(1, int(round(0.1 * len(train))))
    return IOSplits(train, val, np.sort(shuffled[:cut]), np.sort(shuffled[cut:]))


def alternation(labelled_steps: int, labelled: int, unlabelled: int) -> list[tuple[int, int]]:
    """An epoch's blocks: ``labelled`` labelled batches then ``unlabelled`` unlabelled ones, the
    last (shorter) labelled block followed by its share of unlabelled batches, so every epoch keeps
    the labelled:unlabelled ratio however few pairs it has (one block included)."""
    blocks, done = [], 0
    while done < labelled_steps:
        n = min(labelled, labelled_steps - done)
        blocks.append((n, round(unlabelled * n / labelled)))
        done += n
    return blocks


class IOTrainer:
    """Trains the extended model on a built dataset (``load_io_dataset``) and the space."""

    def __init__(self, space, dataset: dict, config: IOModelConfig, unlabelled_graphs: list):
        config.validate()
        self.space, self.config = space, config
        graphs = [space.to_graph(space.from_json(n["arch"])) for n in dataset["networks"]]
        self.vocab = tuple(graphs[0].vocab)
        width = max([len(g.ops) for g in graphs + unlabelled_graphs] + [getattr(space, "max_graph_nodes", 0) or 0])
        self.max_nodes = width
        ops, adj = graph_arrays(graphs, width, len(self.vocab))
        self.net_ops, self.net_adj = torch.from_numpy(ops), torch.from_numpy(adj).float()
        u_ops, u_adj = graph_arrays(unlabelled_graphs, width, len(self.vocab))
        self.u_ops, self.u_adj = torch.from_numpy(u_ops), torch.from_numpy(u_adj).float()
        self.splits = split_networks(dataset["networks"], config.seed)
        self.normaliser = fit_normaliser(dataset["val"][self.splits.train].reshape(-1, dataset["val"].shape[-1]))
        self.targets = {part: torch.from_numpy(normalise(dataset[part], self.normaliser)) for part in ("val", "test")}
        self.images = {part: _prepare_images(dataset["images"][f"{part}_x"]) for part in ("val", "test")}
        self.feature_dim = dataset["val"].shape[-1]
        torch.manual_seed(config.seed)
        self.model = IOArch2Vec(len(self.vocab) + 1, width, self.feature_dim, config)
        self.history: list[dict] = []

    def _pairs(self, rng, nets: np.ndarray, part: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        n_images = len(self.images[part])
        if count <= 0 or count >= len(nets) * n_images:
            flat = rng.permutation(len(nets) * n_images)
        else:
            flat = rng.choice(len(nets) * n_images, count, replace=False)
        return nets[flat // n_images], flat % n_images

    def l1(self, nets: np.ndarray, part: str, seed: int) -> dict:
        """Mean L1 of the model's features and of the mean-feature baseline (the training
        targets' mean vector) on (network, image) pairs of ``nets`` x the ``part`` images."""
        if not len(nets):
            return {"l1": float("nan"), "baseline": float("nan"), "pairs": 0}
        rng = np.random.default_rng([seed, 5])
        rows, images = self._pairs(rng, nets, part, self.config.eval_pairs)
        self.model.eval()
        total, base = 0.0, 0.0
        mean_vector = self.targets["val"][self.splits.train].reshape(-1, self.feature_dim).mean(0)
        with torch.inference_mode():
            for i in range(0, len(rows), 1024):
                r, m = rows[i:i + 1024], images[i:i + 1024]
                one_hot = nn.functional.one_hot(self.net_ops[r], self.model.vae.num_classes).float()
                z, _ = self.model.vae.encoder(one_hot, self.net_adj[r])
                target = self.targets[part][r, m]
                total += float((self.model.predict_features(z, self.images[part][m]) - target).abs().sum())
                base += float((mean_vector - target).abs().sum())
        size = len(rows) * self.feature_dim
        return {"l1": total / size, "baseline": base / size, "pairs": int(len(rows))}

    def fit(self, out=None, quiet: bool = True, log=None) -> PretrainedArch2Vec:
        cfg, model = self.config, self.model
        log = log or (lambda line: None)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
        n_images = len(self.images["val"])
        pairs = min(cfg.pairs_per_epoch or np.inf, len(self.splits.train) * n_images)
        labelled_steps = int(-(-pairs // cfg.batch_size))
        progress = Progress(cfg.epochs * labelled_steps, interactive(quiet), "train io-arch2vec")
        for epoch in range(cfg.epochs):
            began = time.time()
            rng = np.random.default_rng([cfg.seed, epoch])
            gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            rows, images = self._pairs(rng, self.splits.train, "val", int(pairs))
            sums = {"l1": 0.0, "vae_unlabelled": 0.0}
            counts = {"l1": 0, "vae_unlabelled": 0}
            model.train()
            step = 0
            for n_labelled, n_unlabelled in alternation(labelled_steps, cfg.labelled_batches, cfg.unlabelled_batches):
                for _ in range(n_labelled):
                    sl = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
                    r, m = rows[sl], images[sl]
                    loss, parts = model.labelled_loss(self.net_ops[r], self.net_adj[r], self.images["val"][m],
                                                      self.targets["val"][r, m], gen, cfg.kl_weight)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sums["l1"] += parts["l1"]
                    counts["l1"] += 1
                    step += 1
                    progress.update(epoch * labelled_steps + step, epoch=epoch + 1, l1=sums["l1"] / counts["l1"])
                for _ in range(n_unlabelled):
                    u = torch.from_numpy(rng.integers(0, len(self.u_ops), cfg.batch_size))
                    loss, _ = model.vae.loss(self.u_ops[u], self.u_adj[u], gen, cfg.kl_weight)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sums["vae_unlabelled"] += float(loss.detach())
                    counts["vae_unlabelled"] += 1
            record = {"epoch": epoch + 1, **{k: sums[k] / max(1, counts[k]) for k in sums},
                      "labelled_batches": counts["l1"], "unlabelled_batches": counts["vae_unlabelled"]}
            for name, nets, part in (("unseen_networks", self.splits.unseen_networks, "val"),
                                     ("unseen_images", self.splits.unseen_images, "test"),
                                     ("unseen_both", self.splits.unseen_networks, "test"),
                                     ("seen_networks_test_images", self.splits.test_networks, "test")):
                result = self.l1(nets, part, cfg.seed)
                record[f"{name}_l1"], record[f"{name}_baseline"] = result["l1"], result["baseline"]
            from .model import reconstruction_accuracy
            unseen = self.splits.unseen_networks if len(self.splits.unseen_networks) else self.splits.train
            record.update({f"reconstruction_{k}": v for k, v in
                           reconstruction_accuracy(model.vae, self.net_ops[unseen], self.net_adj[unseen]).items()})
            record["seconds"] = round(time.time() - began, 2)
            self.history.append(record)
            log(f"epoch {epoch + 1}/{cfg.epochs}, train l1 {record['l1']:.4f}, unseen networks l1 "
                f"{record['unseen_networks_l1']:.4f} (baseline {record['unseen_networks_baseline']:.4f}), unseen images "
                f"l1 {record['unseen_images_l1']:.4f} (baseline {record['unseen_images_baseline']:.4f}), "
                f"{record['seconds']:.0f}s")
            if out is not None:
                atomic_torch_save(out, self.to_dict(epoch + 1))
        progress.close()
        model.eval()
        return self.embedding(cfg.epochs)

    def embedding(self, epochs_done: int) -> PretrainedArch2Vec:
        vae_cfg = Arch2VecConfig(**{k: v for k, v in asdict(self.config).items()
                                    if k in Arch2VecConfig.__dataclass_fields__})
        return PretrainedArch2Vec(self.model.vae.eval(), vae_cfg, self.space.name, self.vocab, self.max_nodes,
                                  self.history, epochs_done)

    def to_dict(self, epochs_done: int) -> dict:
        return self.embedding(epochs_done).to_dict(extra={
            "kind": "io", "io_config": asdict(self.config), "io_model": self.model.state_dict(),
            "feature_dim": self.feature_dim, "normaliser": [a.tolist() for a in self.normaliser]})
