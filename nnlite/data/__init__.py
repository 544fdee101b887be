"""Data: datasets, the DataLoader that batches them, and datasets that need no download.

>>> import nnlite as nl
>>> train = nl.data.Digits(train=True)
>>> loader = nl.data.DataLoader(train, batch_size=32, shuffle=True)
>>> x, y = next(iter(loader))
>>> x.shape, y.dtype
((32, 64), dtype('int64'))
"""
from .collate import default_collate, default_convert  # noqa: F401
from .dataloader import DataLoader, get_worker_info  # noqa: F401
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,  # noqa: F401
                      random_split)
from .datasets import (MNIST1D, CharDataset, CharVocab, Digits, available_texts, cache_dir,  # noqa: F401
                       load_text, require)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,  # noqa: F401
                      WeightedRandomSampler)
from .readers import MNIST, load_csv, load_npz, read_idx  # noqa: F401
