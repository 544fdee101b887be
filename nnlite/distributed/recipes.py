"""A recipe of ``nnlite train`` made data-parallel: what ``--distributed`` changes.

``mpiexec -n W python -m mpi4py -m nnlite train RECIPE --distributed`` runs the
same recipe on ``W`` ranks. Each rank:

* wraps the model in :class:`~nnlite.distributed.DistributedDataParallel`
  (rank 0's initial parameters everywhere, gradients averaged in backward);
* trains on its share of each epoch, drawn by a
  :class:`~nnlite.distributed.DistributedSampler` seeded with the run's seed,
  in batches of ``batch_size / W``, so one step still sees the recipe's global
  batch of ``batch_size`` examples and follows the same learning-rate plan;
* runs its kernels on one thread unless ``--threads`` says otherwise (the
  ranks already share the machine's cores).

Rank 0 alone prints progress and writes checkpoints, ``metrics.json`` and
the final checkpoint (of the unwrapped model, so the file loads into a plain
model). Across machines, name them in a hostfile (MPICH:
``mpiexec -f hosts -n 8 ...``; Open MPI: ``mpiexec --hostfile hosts -n 8 ...``),
with nnlite installed at the same path on each and ``--out`` on a shared
filesystem, since every rank reads the checkpoint it resumes from.
"""
from ..data import DataLoader
from . import process_group as pg
from .data_parallel import DistributedDataParallel
from .sampler import DistributedSampler

__all__ = ["distribute_recipe"]


def distribute_recipe(recipe, seed=0, bucket_cap_mb=25):
    """Make ``recipe`` (from :func:`nnlite.recipes.build`) train data-parallel on the current world.

    Replaces ``recipe.model`` by its DistributedDataParallel wrapper and
    ``recipe.train_loader`` by this rank's share of the data; returns the recipe.
    """
    world = pg.get_world_size()
    loader = recipe.train_loader
    if loader.batch_size % world:
        raise ValueError(f"--distributed: the batch size {loader.batch_size} does not split evenly over "
                         f"{world} ranks; choose --batch-size as a multiple of {world}")
    sampler = DistributedSampler(loader.dataset, shuffle=loader.shuffle,
                                 seed=seed, drop_last=loader.drop_last)
    recipe.train_loader = DataLoader(loader.dataset, batch_size=loader.batch_size // world, sampler=sampler,
                                     drop_last=loader.drop_last, collate_fn=loader.collate_fn)
    recipe.model = DistributedDataParallel(recipe.model, bucket_cap_mb=bucket_cap_mb)
    return recipe
