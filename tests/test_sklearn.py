"""``xnn.sklearn``: scikit-learn's own estimator checks, Pipeline and GridSearchCV on every
backend, and what the estimators learn. Skipped where scikit-learn is not installed."""

from __future__ import annotations

import importlib
import pickle
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from xnn.sklearn import EXPECTED_FAILED_CHECKS, MLPClassifier, MLPRegressor
from xnn.tools.testing import backend_params

# small settings keep the ~110 checks to a second or two
SMALL = {"hidden_layer_sizes": (16,), "epochs": 10}


@parametrize_with_checks([MLPClassifier(**SMALL), MLPRegressor(**SMALL)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def _failed_checks(estimator) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    return [f"{r['check_name']}: {r['exception']!r}"[:300] for r in results
            if r["status"] == "failed" and r["check_name"] not in EXPECTED_FAILED_CHECKS]


# numpy: test_scikit_learn_checks runs each check as a test of its own
@pytest.mark.parametrize("backend_name", [p for p in backend_params() if p.values[0] != "numpy"])
@pytest.mark.parametrize("kind", [MLPClassifier, MLPRegressor])
def test_the_checks_pass_on_the_other_backends(kind, backend_name):
    assert _failed_checks(kind(backend=backend_name, **SMALL)) == []


@pytest.mark.parametrize("kind", [MLPClassifier, MLPRegressor])
def test_the_checks_pass_in_float64(kind):
    assert _failed_checks(kind(dtype="float64", **SMALL)) == []


def test_pipeline_and_grid_search_on_every_backend(backend):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]  # string labels
    pipeline = make_pipeline(StandardScaler(),
                             MLPClassifier(backend=backend.name, random_state=0, epochs=15))
    search = GridSearchCV(pipeline, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                                     "mlpclassifier__optimizer": ["sgd", "momentum"]}, cv=3)
    search.fit(X, names)
    assert search.best_score_ > 0.85
    model = search.best_estimator_[-1]
    assert model.model_.backend.name == backend.name
    predicted = search.predict(X)
    assert isinstance(predicted, np.ndarray) and set(predicted) <= set(names)
    assert search.score(X, names) > 0.85


def test_the_classifier_learns_and_its_probabilities_are_distributions():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (150, 3) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.classes_[probabilities.argmax(axis=1)], model.predict(X))
    assert model.n_features_in_ == 4 and model.n_iter_ == 20 and len(model.loss_curve_) == 20
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_the_regressor_answers_in_the_units_of_y_with_one_or_more_columns():
    X, y = make_regression(300, 5, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    Y = np.column_stack([1000 * y + 5, -0.01 * y])  # scales the network never sees
    model = MLPRegressor(random_state=0, epochs=40).fit(X, Y)
    assert model.predict(X).shape == (300, 2) and model.score(X, Y) > 0.9
    single = MLPRegressor(random_state=0, epochs=40).fit(X, Y[:, 0])
    assert single.predict(X).shape == (300,) and single.score(X, Y[:, 0]) > 0.9


def test_a_validation_fraction_holds_rows_out_and_stops_early():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(validation_fraction=0.2, epochs=60, eval_every=5,
                          random_state=0).fit(X, y)
    evaluated = [r for r in model.history_.records if r["val_loss"] is not None]
    assert evaluated and model.n_iter_ <= 60
    assert model.score(X, y) > 0.85
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        MLPClassifier(validation_fraction=1.0).fit(X, y)


def test_the_same_random_state_gives_the_same_model_on_every_backend(backend):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    here = MLPClassifier(backend=backend.name, random_state=3, dtype="float64").fit(X, y)
    home = MLPClassifier(backend="numpy", random_state=3, dtype="float64").fit(X, y)
    np.testing.assert_allclose(here.predict_proba(X), home.predict_proba(X), rtol=1e-6,
                               atol=1e-9)


def test_parameters_clone_pickle_and_bad_values():
    model = MLPClassifier(hidden_layer_sizes=(8, 4), activation="logistic", dropout=0.9,
                          optimizer="adam", learning_rate=0.01)
    assert clone(model).get_params() == model.get_params()
    assert model.set_params(epochs=3).epochs == 3
    X, y = load_iris(return_X_y=True)
    fitted = model.fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    for name, value, message in (("activation", "nope", "activation must be one of"),
                                 ("optimizer", "nope", "optimizer must be one of"),
                                 ("epochs", 0, "epochs must be a positive integer")):
        with pytest.raises(ValueError, match=message):
            clone(model).set_params(**{name: value}).fit(X, y)


def test_without_scikit_learn_the_import_says_how_to_install(monkeypatch):
    for name in ("xnn.sklearn", "xnn.tools.estimators"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import sklearn...` raises ImportError
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        importlib.import_module("xnn.sklearn")
