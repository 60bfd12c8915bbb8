"""Datasets, the data manager and loaders, with Dassl's names and behaviour.

`Datum` is one labelled image; `DatasetBase` holds train/val/test lists of them and does CoOp's
few-shot sampling; `DataManager` builds the registered dataset, its transforms and loaders.
"""
import os.path as osp
import random
from collections import defaultdict

import torch
from PIL import Image
from tabulate import tabulate
from torch.utils.data import Dataset as TorchDataset

from ..errors import UserError
from ..images import to_rgb8
from .registry import Registry
from .transforms import INTERPOLATION_MODES, build_transform

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    avai = DATASET_REGISTRY.registered_names()
    if cfg.DATASET.NAME not in DATASET_REGISTRY:
        raise KeyError(
            f'Dataset "{cfg.DATASET.NAME}" is not registered. Registered datasets: {", ".join(sorted(avai))}. '
            "Import the module that defines it (train.py imports clip_datasets) or check DATASET.NAME."
        )
    if cfg.VERBOSE:
        print(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)


class Datum:
    """One sample: image path, integer label, domain index and class name."""

    __slots__ = ("_impath", "_label", "_domain", "_classname")

    def __init__(self, impath="", label=0, domain=0, classname=""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
        self._impath = impath
        self._label = int(label)
        self._domain = int(domain)
        self._classname = classname

    @property
    def impath(self):
        return self._impath

    @property
    def label(self):
        return self._label

    @property
    def domain(self):
        return self._domain

    @property
    def classname(self):
        return self._classname

    def __repr__(self):
        return f"Datum({self._impath!r}, label={self._label}, classname={self._classname!r})"


class DatasetBase:
    """Train / val / test lists of `Datum`; the class set is read off the training list."""

    dataset_dir = ""
    domains = []

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        return max({item.label for item in data_source}) + 1

    @staticmethod
    def get_lab2cname(data_source):
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return mapping, [mapping[label] for label in labels]

    def check_input_domains(self, source_domains, target_domains):
        for domain in list(source_domains) + list(target_domains):
            if domain not in self.domains:
                raise ValueError(f"Input domain must belong to {self.domains}, but got [{domain}]")

    @staticmethod
    def split_dataset_by_label(data_source):
        """Group items by label, labels in order of first appearance."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source):
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1, repeat=False):
        """Sample `num_shots` items per label from each source with Python's global `random`.

        Labels are visited in order of first appearance; a label with at least `num_shots` items
        gets `random.sample(items, num_shots)`, one with fewer keeps all of them (or, with `repeat`,
        `random.choices`). This is the rule of Dassl/CoOp, so a seed selects the same images.
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            dataset = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    dataset.extend(random.sample(items, num_shots))
                elif repeat:
                    dataset.extend(random.choices(items, k=num_shots))
                else:
                    dataset.extend(items)
            output.append(dataset)
        return output[0] if len(output) == 1 else output


def read_image(path):
    """Open an image as 8-bit RGB (high bit depths scaled, not clipped: dassl_compat.images), with an error
    that names the file when it is missing or cannot be decoded (the header check before training does
    not decode whole images: a truncated JPEG body shows here)."""
    if not osp.exists(path):
        raise FileNotFoundError(f"Image file not found: {path}")
    try:
        with Image.open(path) as img:
            return to_rgb8(img)
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(
            f"Image file {path} cannot be decoded ({error}): it is truncated or damaged. Replace it with a good "
            "copy (extract or download the dataset again) and run the same command: it resumes from its last "
            "saved epoch."
        ) from error


class DatasetWrapper(TorchDataset):
    """Reads and transforms the images of a list of `Datum`; items are dicts like Dassl's."""

    def __init__(self, cfg, data_source, transform=None, is_train=False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError(f"Cannot augment the image {self.k_tfm} times because transform is None")
        from torchvision import transforms as T

        interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
        self.to_tensor = T.Compose(
            [
                T.Resize(cfg.INPUT.SIZE, interpolation=interp_mode),
                T.ToTensor(),
                T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD),
            ]
        )

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)
        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                key = "img" if i == 0 else f"img{i + 1}"
                output[key] = self._transform_image(tfm, img0)
        else:
            output["img"] = self._transform_image(self.transform, img0)
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0):
        imgs = [tfm(img0) for _ in range(self.k_tfm)]
        return imgs[0] if len(imgs) == 1 else imgs


def build_data_loader(
    cfg,
    sampler_type="SequentialSampler",
    data_source=None,
    batch_size=64,
    n_domain=0,
    n_ins=2,
    tfm=None,
    is_train=True,
    dataset_wrapper=None,
):
    """A DataLoader over `data_source`; `drop_last` in training when there is at least one full batch."""
    if sampler_type == "RandomSampler":
        sampler = torch.utils.data.RandomSampler(data_source)
    elif sampler_type == "SequentialSampler":
        sampler = torch.utils.data.SequentialSampler(data_source)
    else:
        raise ValueError(
            f"Unknown sampler {sampler_type!r}: the bundled engine provides RandomSampler and "
            "SequentialSampler (install Dassl for its domain samplers)"
        )
    wrapper = dataset_wrapper or DatasetWrapper
    return torch.utils.data.DataLoader(
        wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(data_source) >= batch_size,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
        # Training workers start afresh every epoch, seeded from torch's global generator, so that a
        # resumed run (which restores that generator) augments exactly as an uninterrupted one.
        persistent_workers=cfg.DATALOADER.NUM_WORKERS > 0 and not is_train,
    )


class DataManager:
    """Builds the dataset named by DATASET.NAME, its transforms and its train / val / test loaders."""

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        tfm_train = custom_tfm_train or build_transform(cfg, is_train=True)
        tfm_test = custom_tfm_test or build_transform(cfg, is_train=False)

        self.train_loader_x = build_data_loader(
            cfg,
            sampler_type=cfg.DATALOADER.TRAIN_X.SAMPLER,
            data_source=dataset.train_x,
            batch_size=cfg.DATALOADER.TRAIN_X.BATCH_SIZE,
            tfm=tfm_train,
            is_train=True,
            dataset_wrapper=dataset_wrapper,
        )
        self.train_loader_u = None
        if dataset.train_u:
            self.train_loader_u = build_data_loader(
                cfg,
                sampler_type=cfg.DATALOADER.TRAIN_U.SAMPLER,
                data_source=dataset.train_u,
                batch_size=cfg.DATALOADER.TRAIN_U.BATCH_SIZE,
                tfm=tfm_train,
                is_train=True,
                dataset_wrapper=dataset_wrapper,
            )
        self.val_loader = None
        if dataset.val:
            self.val_loader = build_data_loader(
                cfg,
                sampler_type=cfg.DATALOADER.TEST.SAMPLER,
                data_source=dataset.val,
                batch_size=cfg.DATALOADER.TEST.BATCH_SIZE,
                tfm=tfm_test,
                is_train=False,
                dataset_wrapper=dataset_wrapper,
            )
        self.test_loader = build_data_loader(
            cfg,
            sampler_type=cfg.DATALOADER.TEST.SAMPLER,
            data_source=dataset.test,
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE,
            tfm=tfm_test,
            is_train=False,
            dataset_wrapper=dataset_wrapper,
        )

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self._lab2cname

    def show_dataset_summary(self, cfg):
        table = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.train_u:
            table.append(["# train_u", f"{len(self.dataset.train_u):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(table))
