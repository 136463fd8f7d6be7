"""Adam, AdamW, RMSProp, AdaGrad, weight decay, Nesterov and clipping: each rule against its
closed form on every backend, against ``torch.optim`` step by step when PyTorch is installed,
and the ``out=`` kernels against the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnn import SGD, SGDMomentum, get_backend, to_numpy
from xnn.backends.kernels import Kernels, NumPyKernels
from xnn.nn.store import ParameterStore
from xnn.train.adaptive import AdaGrad, Adam, AdamW, RMSProp

RULES = {
    "sgd-wd": lambda: SGD(0.1, weight_decay=0.05),
    "momentum-wd": lambda: SGDMomentum(0.1, momentum=0.9, weight_decay=0.05),
    "nesterov": lambda: SGDMomentum(0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
    "adam": lambda: Adam(0.01),
    "adam-l2": lambda: Adam(0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
    "adamw": lambda: AdamW(0.01, weight_decay=0.1),
    "rmsprop": lambda: RMSProp(0.01),
    "rmsprop-momentum": lambda: RMSProp(0.01, alpha=0.9, momentum=0.8, weight_decay=0.05),
    "adagrad": lambda: AdaGrad(0.05, weight_decay=0.05),
    "adam-clipped": lambda: Adam(0.01, clip_norm=0.5),
}


def _grads(steps=4, size=7, seed=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(size), [rng.standard_normal(size) for _ in range(steps)]


def run_rule(optimizer, backend, theta, grads, dtype="float64"):
    """The optimizer's explicit rule, step by step, on one flat parameter."""
    store = ParameterStore(backend, dtype, {"p": theta.shape})
    store.values[...] = backend.asarray(theta, backend.dtype(dtype))
    state = optimizer.init(store)
    for g in grads:
        store.grads[...] = backend.asarray(g, backend.dtype(dtype))
        if optimizer.clip_norm is not None:
            store.kernels.clip_norm(store.grads, optimizer.clip_norm)
        state.step += 1
        optimizer.update(state, store, optimizer.initial_lr)
    return to_numpy(store.values)


def closed_form(name, theta, grads):
    """Each rule written out in NumPy, from its definition."""
    theta, state = theta.copy(), {}
    optimizer = RULES[name]()
    wd = optimizer.weight_decay
    for t, g in enumerate(grads, start=1):
        if optimizer.clip_norm is not None:
            g = g * min(1.0, optimizer.clip_norm / (np.linalg.norm(g) + 1e-6))
        lr = optimizer.initial_lr
        if isinstance(optimizer, AdamW):
            theta = theta * (1 - lr * wd)
        else:
            g = g + wd * theta
        if isinstance(optimizer, SGDMomentum):
            v = state["v"] = optimizer.momentum * state.get("v", 0) + lr * g
            theta = theta - (lr * g + optimizer.momentum * v if name == "nesterov" else v)
        elif isinstance(optimizer, SGD):
            theta = theta - lr * g
        elif isinstance(optimizer, Adam):
            b1, b2 = optimizer.betas
            m = state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
            v = state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + optimizer.eps)
        elif isinstance(optimizer, RMSProp):
            s = state["s"] = optimizer.alpha * state.get("s", 0) + (1 - optimizer.alpha) * g * g
            step = g / (np.sqrt(s) + optimizer.eps)
            if optimizer.momentum:
                step = state["b"] = optimizer.momentum * state.get("b", 0) + step
            theta = theta - lr * step
        else:
            total = state["sum"] = state.get("sum", 0) + g * g
            theta = theta - lr * g / (np.sqrt(total) + optimizer.eps)
    return theta


@pytest.mark.parametrize("name", RULES)
def test_each_rule_against_its_closed_form(backend, name):
    theta, grads = _grads()
    got = run_rule(RULES[name](), backend, theta, grads)
    np.testing.assert_allclose(got, closed_form(name, theta, grads), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", RULES)
def test_numpy_out_kernels_equal_the_reference(name):
    theta, grads = _grads(size=300)
    optimizer = RULES[name]()
    reference = run_rule(optimizer, _with_kernels(Kernels(np)), theta, grads)
    np.testing.assert_allclose(run_rule(RULES[name](), _with_kernels(NumPyKernels(np)), theta,
                                        grads), reference, rtol=1e-13, atol=1e-15)


def _with_kernels(kernels):
    from xnn import get_backend

    class Custom(type(get_backend("numpy"))):
        def __init__(self):
            super().__init__()
            self.kernels = kernels

    return Custom()


@pytest.mark.parametrize("name", RULES)
def test_each_rule_equals_torch_optim_step_by_step(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not a test dependency")
    theta, grads = _grads(steps=6)
    optimizer = RULES[name]()
    param = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    wd = optimizer.weight_decay
    lr = optimizer.initial_lr
    if isinstance(optimizer, SGDMomentum):
        theirs = torch.optim.SGD([param], lr=lr, momentum=optimizer.momentum,
                                 nesterov=name == "nesterov", weight_decay=wd)
    elif isinstance(optimizer, SGD):
        theirs = torch.optim.SGD([param], lr=lr, weight_decay=wd)
    elif isinstance(optimizer, AdamW):
        theirs = torch.optim.AdamW([param], lr=lr, betas=optimizer.betas, eps=optimizer.eps,
                                   weight_decay=wd)
    elif isinstance(optimizer, Adam):
        theirs = torch.optim.Adam([param], lr=lr, betas=optimizer.betas, eps=optimizer.eps,
                                  weight_decay=wd)
    elif isinstance(optimizer, RMSProp):
        theirs = torch.optim.RMSprop([param], lr=lr, alpha=optimizer.alpha, eps=optimizer.eps,
                                     momentum=optimizer.momentum, weight_decay=wd)
    else:
        theirs = torch.optim.Adagrad([param], lr=lr, eps=optimizer.eps, weight_decay=wd)
    for step, g in enumerate(grads, start=1):
        param.grad = torch.tensor(g, dtype=torch.float64)
        if optimizer.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([param], optimizer.clip_norm)
        theirs.step()
        ours = run_rule(RULES[name](), get_backend("numpy"), theta, grads[:step])
        np.testing.assert_allclose(ours, param.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {step}")


def test_clipping_scales_only_above_the_norm(backend):
    grads = backend.asarray(np.array([3.0, 4.0]))  # norm 5
    norm = backend.kernels.clip_norm(grads, 10.0)
    assert math.isclose(float(to_numpy(norm)), 5.0)
    np.testing.assert_allclose(to_numpy(grads), [3.0, 4.0])
    backend.kernels.clip_norm(grads, 1.0)
    np.testing.assert_allclose(to_numpy(grads), np.array([3.0, 4.0]) / (5.0 + 1e-6))


def test_adam_keeps_exactly_two_arrays():
    store = ParameterStore(_with_kernels(NumPyKernels(np)), "float32", {"p": (10,)})
    assert sorted(Adam().init(store).arrays) == ["m", "v"]
    assert sorted(RMSProp().init(store).arrays) == ["square_avg"]
    assert sorted(AdaGrad().init(store).arrays) == ["sum"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Adam(-0.1), "lr"),
    (lambda: Adam(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: Adam(betas=(-0.1, 0.9)), r"betas\[0\]"),
    (lambda: Adam(betas=0.9), "pair"),
    (lambda: Adam(eps=0.0), "eps"),
    (lambda: RMSProp(alpha=1.0), "alpha"),
    (lambda: AdaGrad(eps=-1.0), "eps"),
    (lambda: AdamW(weight_decay=-0.01), "weight_decay"),
    (lambda: SGD(0.1, clip_norm=0.0), "clip_norm"),
    (lambda: SGD(0.1, schedule="cosine"), "schedule"),
    (lambda: SGDMomentum(0.1, momentum=0.0, nesterov=True), "nesterov"),
])
def test_bad_hyper_parameters_are_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("name", RULES)
def test_each_optimizer_trains_the_same_on_numpy_and_array_api_strict(name):
    """Parity: the same model, data and optimizer on both backends (NumPy's kernels under
    both; the out= path against the reference), 15 steps in float64."""
    pytest.importorskip("array_api_strict")
    from xnn import Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer

    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 5))
    y = np.argmax(X @ rng.standard_normal((5, 3)), axis=1)
    trained = []
    for backend in ("numpy", "array_api_strict"):
        net = NeuralNetwork([Dense(8, Tanh(), dropout=0.8), Dense(3)], SoftmaxCrossEntropy(),
                            seed=2, backend=backend, dtype="float64")
        Trainer(net, RULES[name](), log=lambda line: None).fit(
            X, y, X, y, epochs=3, eval_every=3, batch_size=12)
        trained.append([to_numpy(p) for p in net.params()])
    for ours, theirs in zip(*trained, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-13)


def test_adam_trains_a_classifier():
    from xnn import Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer
    from xnn.preprocessing import accuracy

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 10))
    y = np.argmax(X @ rng.standard_normal((10, 4)), axis=1)
    net = NeuralNetwork([Dense(16, Tanh()), Dense(4)], SoftmaxCrossEntropy(), seed=1)
    Trainer(net, AdamW(0.01), log=lambda line: None).fit(X, y, X, y, epochs=30,
                                                         eval_every=30, batch_size=30)
    assert accuracy(net, X, y) > 0.9
