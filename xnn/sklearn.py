"""scikit-learn estimators trained by xnn: :class:`MLPClassifier` and :class:`MLPRegressor`.

Needs scikit-learn (``pip install scikit-learn``, or ``pip install -e ".[sklearn]"`` in the
checkout). They work in ``Pipeline`` and ``GridSearchCV`` on any xnn backend (``backend=``),
and pass scikit-learn's ``check_estimator``; see :mod:`xnn.tools.estimators`.
"""

from xnn.tools.estimators import *  # noqa: F403
from xnn.tools.estimators import __all__  # noqa: F401
