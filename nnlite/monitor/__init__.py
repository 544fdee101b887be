"""Watching parameters while they learn: TensorBoard, per-parameter statistics, loss landscapes,
the computation graph, and guards for divergence and plateaus.

The callbacks plug into :func:`nnlite.train.fit` (``callbacks=[...]``); the
functions work on any model. Plots of what they record are in :mod:`nnlite.plot`.
tensorboardX (for :class:`TensorBoardLogger`) and graphviz (for rendering a
graph) are imported only when used: ``pip install "nnlite[monitor]"``.
"""
from .convergence import DivergenceGuard, PlateauDetector, find_plateau
from .graph import draw_graph, graph_structure, render_dot
from .landscape import LossLandscape, average_loss, loss_landscape_1d, loss_landscape_2d, random_direction
from .parameter_monitor import STATISTICS, ParameterMonitor, gradient_flow
from .tensorboard import TensorBoardLogger, weight_image

__all__ = ["TensorBoardLogger", "weight_image", "ParameterMonitor", "STATISTICS", "gradient_flow",
           "loss_landscape_1d", "loss_landscape_2d", "random_direction", "average_loss", "LossLandscape",
           "draw_graph", "graph_structure", "render_dot", "DivergenceGuard", "PlateauDetector", "find_plateau"]
