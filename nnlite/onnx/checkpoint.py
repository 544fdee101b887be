"""Export a checkpoint written by ``nnlite train`` (``nnlite export CKPT --onnx out.onnx``)."""
import numpy as np

from ..io import load_checkpoint, read_checkpoint
from .exporter import export

__all__ = ["export_checkpoint"]


def export_checkpoint(path, onnx_path, opset=17):
    """Rebuild the checkpoint's recipe model, load its parameters and export it with a free batch size.

    The checkpoint must name its recipe (``nnlite train`` writes it into
    ``extra["recipe"]``); the example input is the first test example of that
    recipe's data. Returns the ``onnx.ModelProto``.
    """
    from .. import recipes
    info = read_checkpoint(path)
    recipe_name = (info.get("extra") or {}).get("recipe") if isinstance(info.get("extra"), dict) else None
    if recipe_name not in recipes.names():
        raise ValueError(f"{path}: the checkpoint names no recipe (extra['recipe'] is {recipe_name!r}); "
                         "export a model you build yourself with nl.onnx.export(model, example_input, path)")
    recipe = recipes.build(recipe_name)
    load_checkpoint(path, model=recipe.model, restore_rng=False)
    x = next(iter(recipe.test_loader))[0]
    example = np.asarray(x.data if hasattr(x, "data") else x)[:1]
    return export(recipe.model, example, onnx_path, opset=opset,
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
