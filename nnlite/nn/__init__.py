"""Layers, containers, losses (``nnlite.nn``), with ``functional`` and ``init`` beside them."""
from ..parameter import Buffer, Parameter  # noqa: F401
from .module import Module  # noqa: F401
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from .rectifier import (CELU, ELU, SELU, Hardtanh, LeakyReLU, ReLU, ReLU6, RReLU, Threshold)  # noqa: F401
from .prelu import PReLU  # noqa: F401
from .activation import (GELU, Hardsigmoid, Hardswish, LogSigmoid, Mish, Sigmoid, SiLU, Softplus,  # noqa: F401
                         Softsign, Tanh)
from .softmax import LogSoftmax, Softmax, Softmax2d, Softmin  # noqa: F401
from .shrinkage import Hardshrink, Softshrink, Tanhshrink  # noqa: F401
from .container import ModuleDict, ModuleList, Residual, Sequential  # noqa: F401
from .parameter_containers import ParameterDict, ParameterList  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .dropconnect import DropConnectLinear  # noqa: F401
from .linear import Bilinear, Flatten, Identity, Linear, Unflatten  # noqa: F401
from .fusion import (BatchNormReLU1d, BatchNormReLU2d, ConvReLU1d, ConvReLU2d, LinearReLU,  # noqa: F401
                     fuse_batch_norm_relu, fuse_conv_relu, fuse_linear_relu)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm  # noqa: F401
from .instance_norm import InstanceNorm1d, InstanceNorm2d  # noqa: F401
from .attention import MultiheadAttention  # noqa: F401
from .gating import GLU, Temperature  # noqa: F401
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: F401
from .blocks import Bottleneck, DepthwiseSeparableConv2d  # noqa: F401
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, LPPool1d, LPPool2d,  # noqa: F401
                      MaxPool1d, MaxPool2d)
from .embedding import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding  # noqa: F401
from .loss import (BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,  # noqa: F401
                   NLLLoss, SmoothL1Loss)
from .loss import BCELoss, GaussianNLLLoss, PoissonNLLLoss  # noqa: F401
from .margin_loss import (CosineEmbeddingLoss, HingeEmbeddingLoss, MarginRankingLoss,  # noqa: F401
                          MultiLabelSoftMarginLoss, MultiMarginLoss, SoftMarginLoss, TripletMarginLoss)
from .distance import CosineSimilarity, PairwiseDistance  # noqa: F401
from .lora import LoRALinear  # noqa: F401,E402
from .grouped_query_attention import GroupedQueryAttention  # noqa: F401,E402
from . import lora  # noqa: F401,E402
from .distillation import DistillationLoss  # noqa: F401,E402
from .conditional import (AdaptiveInstanceNorm, ConditionalBatchNorm1d, ConditionalBatchNorm2d,  # noqa: F401,E402
                          FiLM)
from .concrete_dropout import ConcreteDropout  # noqa: F401,E402
from .dropout import AlphaDropout, Dropout1d, Dropout2d  # noqa: F401,E402
from .pooling import AdaptiveMaxPool1d, AdaptiveMaxPool2d  # noqa: F401,E402
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ReflectionPad1d,  # noqa: F401,E402
                      ReflectionPad2d, ReplicationPad1d, ReplicationPad2d, ZeroPad1d, ZeroPad2d)
from .pixel_shuffle import PixelShuffle, PixelUnshuffle  # noqa: F401,E402
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401,E402
