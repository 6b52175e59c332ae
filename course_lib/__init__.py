"""course_lib: the tested NumPy library behind the weight-initialization course.

Modules
-------
initializers
    Fans, gains, ``variance_scaling`` and the LeCun / Xavier (Glorot) / He
    families, orthogonal, constant and the PyTorch ``nn.Linear`` default.
network
    Deterministic MLP forward and backward passes (no randomness inside).
experiments
    Monte Carlo and per-layer statistics (all sampling lives here).
data
    The scikit-learn digits set (shipped with the package) and normalization.
training
    A small NumPy MLP trainer (mini-batch SGD with momentum, softmax cross-entropy).
plotting
    Functions that take results and return a matplotlib ``Figure``.
modern
    What came after He: LSUV, SELU self-normalization, orthogonal/dynamical isometry.
papers
    The experiments of the paper-reproduction chapters (Glorot & Bengio 2010, He et al. 2015).
seeds
    Claims over several seeds: ``over_seeds`` runs an experiment per spawned generator,
    ``summarize`` gives the median and range the book quotes.
signal
    Mean-field signal propagation: length and correlation maps by Gauss-Hermite quadrature,
    chi, order/chaos, depth scales, critical and computed gains (``course_lib.signal``).
residual
    Residual MLPs at initialization: variance growth with depth and its fixes (1/sqrt(L), zero
    init, SkipInit, Fixup).
attention
    A small NumPy transformer at initialization: attention, LayerNorm, pre-/post-LN stacks.
report
    A per-layer report (activation and gradient std, dead units, drift flags and a diagnosis)
    of any network at initialization, from weights or from arrays captured by framework hooks.
grading
    Statistical checks used by the hidden tests of the nbgrader assignments.

Every sampling function takes a keyword-only ``rng`` (SPEC 7) and leaves the
global ``np.random`` state alone.
"""

from . import attention as attention
from . import residual as residual
from . import signal as signal  # the maps' names (chi, phase, ...) stay under course_lib.signal
from ._validation import as_generator as as_generator
from .data import *  # noqa: F403
from .experiments import *  # noqa: F403
from .initializers import *  # noqa: F403
from .modern import *  # noqa: F403
from .network import *  # noqa: F403
from .papers import *  # noqa: F403
from .report import *  # noqa: F403
from .seeds import *  # noqa: F403
from .training import *  # noqa: F403

__version__ = "0.1.0"
# plotting and grading are imported on demand (matplotlib is heavy; grading is for instructors):
# ``from course_lib import plotting`` / ``from course_lib.grading import ...``.
