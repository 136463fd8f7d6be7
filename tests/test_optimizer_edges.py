"""Optimizers at their edges: their representations and their configurations (what a training
checkpoint belongs to), which no training test reads (found by mutation testing)."""

from __future__ import annotations

import pytest

from xnn import SGD, SGDMomentum
from xnn.train.adaptive import AdaGrad, Adam, AdamW, RMSProp
from xnn.train.schedules import CosineDecay

# (make the optimizer, repr, config beyond the common keys): made in the test, not at collection,
# where a mutant of its __init__ is not active yet
CASES = [
    (lambda: SGD(0.1), "SGD(lr=0.1)", {}),
    (lambda: SGD(0.1, final_lr=0.01, decay_type="linear"),
     "SGD(lr=0.1, final_lr=0.01, decay_type='linear')", {}),
    (lambda: SGD(0.1, weight_decay=0.01, clip_norm=5.0),
     "SGD(lr=0.1, weight_decay=0.01, clip_norm=5.0)", {}),
    (lambda: SGDMomentum(0.2, momentum=0.9), "SGDMomentum(lr=0.2, momentum=0.9)",
     {"momentum": 0.9, "nesterov": False}),
    (lambda: SGDMomentum(0.2, nesterov=True, final_lr=0.05, decay_type="exponential"),
     "SGDMomentum(lr=0.2, final_lr=0.05, decay_type='exponential', momentum=0.9, nesterov=True)",
     {"momentum": 0.9, "nesterov": True}),
    (lambda: SGD(0.1, schedule=CosineDecay(0.01, 2)),
     "SGD(lr=0.1, schedule=CosineDecay(final_lr=0.01, warmup_epochs=2))", {}),
    (lambda: Adam(), "Adam(lr=0.001, betas=[0.9, 0.999], eps=1e-08)",
     {"betas": [0.9, 0.999], "eps": 1e-08}),
    (lambda: Adam(0.01, betas=(0.8, 0.9), eps=1e-6), "Adam(lr=0.01, betas=[0.8, 0.9], eps=1e-06)",
     {"betas": [0.8, 0.9], "eps": 1e-06}),
    (lambda: AdamW(), "AdamW(lr=0.001, weight_decay=0.01, betas=[0.9, 0.999], eps=1e-08)",
     {"betas": [0.9, 0.999], "eps": 1e-08}),
    (lambda: RMSProp(), "RMSProp(lr=0.01, alpha=0.99, eps=1e-08, momentum=0.0)",
     {"alpha": 0.99, "eps": 1e-08, "momentum": 0.0}),
    (lambda: RMSProp(momentum=0.5, alpha=0.9),
     "RMSProp(lr=0.01, alpha=0.9, eps=1e-08, momentum=0.5)",
     {"alpha": 0.9, "eps": 1e-08, "momentum": 0.5}),
    (lambda: AdaGrad(), "AdaGrad(lr=0.01, eps=1e-10)", {"eps": 1e-10}),
    (lambda: AdaGrad(0.1, eps=1e-8), "AdaGrad(lr=0.1, eps=1e-08)", {"eps": 1e-08}),
]


@pytest.mark.parametrize(("make", "text", "extra"), CASES, ids=[c[1] for c in CASES])
def test_representation_shows_what_differs_from_the_defaults(make, text, extra):
    assert repr(make()) == text


@pytest.mark.parametrize(("make", "text", "extra"), CASES, ids=[c[1] for c in CASES])
def test_configuration_names_every_hyper_parameter(make, text, extra):
    optimizer = make()
    config = optimizer.config()
    assert config == {"type": type(optimizer).__name__, "lr": optimizer.initial_lr,
                      "final_lr": optimizer.final_lr, "decay_type": optimizer.decay_type,
                      "schedule": repr(optimizer.schedule),
                      "weight_decay": optimizer.weight_decay, "clip_norm": optimizer.clip_norm,
                      **extra}
    assert list(config)[:7] == ["type", "lr", "final_lr", "decay_type", "schedule",
                                "weight_decay", "clip_norm"]


def test_configurations_tell_optimizers_apart():
    configs = [repr(sorted(case[0]().config().items())) for case in CASES]
    assert len(set(configs)) == len(configs)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Adam(betas=(1.0, 0.9)), r"^betas\[0\] must be a number in \[0\.0, 1\.0\), got 1\.0$"),
    (lambda: Adam(betas=(1.5, 0.9)), r"^betas\[0\] must be a number in \[0\.0, 1\.0\)"),
    (lambda: Adam(betas=(-0.1, 0.9)), r"^betas\[0\] must be a number in \[0\.0, 1\.0\)"),
    (lambda: Adam(betas=(0.9, 1.0)), r"^betas\[1\] must be a number in \[0\.0, 1\.0\), got 1\.0$"),
    (lambda: Adam(betas=(0.9, -0.1)), r"^betas\[1\] must be a number in \[0\.0, 1\.0\)"),
    (lambda: Adam(eps=0.0), r"^eps must be a number in \(0\.0, inf\], got 0\.0$"),
    (lambda: RMSProp(alpha=1.0), r"^alpha must be a number in \[0\.0, 1\.0\), got 1\.0$"),
    (lambda: RMSProp(alpha=-0.5), r"^alpha must be a number in \[0\.0, 1\.0\)"),
    (lambda: RMSProp(eps=0.0), r"^eps must be a number in \(0\.0, inf\], got 0\.0$"),
    (lambda: RMSProp(eps=-1e-8), r"^eps must be a number in \(0\.0, inf\]"),
    (lambda: RMSProp(momentum=1.0), r"^momentum must be a number in \[0\.0, 1\.0\), got 1\.0$"),
    (lambda: RMSProp(momentum=1.5), r"^momentum must be a number in \[0\.0, 1\.0\)"),
    (lambda: RMSProp(momentum=-0.1), r"^momentum must be a number in \[0\.0, 1\.0\)"),
    (lambda: AdaGrad(eps=0.0), r"^eps must be a number in \(0\.0, inf\], got 0\.0$"),
])
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_lowest_allowed_hyper_parameters():
    assert Adam(betas=(0.0, 0.0)).betas == (0.0, 0.0)
    assert RMSProp(alpha=0.0, momentum=0.0).alpha == 0.0


@pytest.mark.parametrize("make", [
    lambda **o: AdamW(0.01, **o), lambda **o: RMSProp(0.01, **o), lambda **o: AdaGrad(0.01, **o),
    lambda **o: Adam(0.01, **o)])
def test_common_options_reach_the_optimizer(make):
    optimizer = make(clip_norm=2.0, schedule=CosineDecay(0.001))
    assert optimizer.clip_norm == 2.0 and repr(optimizer.schedule) == (
        "CosineDecay(final_lr=0.001, warmup_epochs=0)")
    assert make(weight_decay=0.25).weight_decay == 0.25


def test_state_arrays_take_the_parameters_dtype():
    import numpy as np

    from xnn import Dense, MeanSquaredError, NeuralNetwork

    for optimizer in (Adam(), RMSProp(momentum=0.5), AdaGrad(), SGDMomentum(0.1)):
        net = NeuralNetwork([Dense(2)], MeanSquaredError(), dtype="float32")
        optimizer.net = net
        net.train_batch(np.ones((3, 4)), np.zeros((3, 2)))
        optimizer.step()
        for name, array in optimizer.state.arrays.items():
            assert array.dtype == np.float32, name


def test_a_moved_state_keeps_its_step():
    import numpy as np

    from xnn import get_backend
    from xnn.train.optimizers import OptimizerState

    state = OptimizerState({"m": np.ones(3)}, 7)
    moved = state.to(get_backend("array_api_strict"))
    assert moved.step == 7 and moved.arrays["m"].shape == (3,)


def test_optimizers_without_state_or_network_pickle():
    import pickle

    import numpy as np

    from xnn import Dense, MeanSquaredError, NeuralNetwork

    fresh = pickle.loads(pickle.dumps(Adam(0.01)))
    assert fresh.state is None and repr(fresh) == "Adam(lr=0.01, betas=[0.9, 0.999], eps=1e-08)"
    net = NeuralNetwork([Dense(2)], MeanSquaredError())
    net.forward(np.ones((1, 3)))  # built: a store, but no step yet
    optimizer = SGDMomentum(0.1)
    optimizer.net = net
    twin_net, twin = pickle.loads(pickle.dumps((net, optimizer)))
    assert twin.state is None and twin.net is twin_net


@pytest.mark.parametrize("make", [SGD, SGDMomentum])
def test_the_books_defaults(make):
    """lr 0.01, and a decay that is asked for without final_lr decays to 0."""
    assert make().initial_lr == 0.01
    optimizer = make(0.1, decay_type="linear")
    optimizer.start(3)
    assert [optimizer.schedule(k) for k in range(3)] == pytest.approx([0.1, 0.05, 0.0])


def test_start_and_set_epoch_use_the_first_step_of_an_epoch():
    from xnn.train.schedules import LinearDecay

    optimizer = SGD(0.7, schedule=LinearDecay(0.0, per="step"))
    optimizer.start(2, 4)  # 8 steps: 0.7, 0.6, ..., 0.0
    assert optimizer.lr == pytest.approx(0.7)  # epoch 0, step 0
    optimizer.set_epoch(1)
    assert optimizer.lr == pytest.approx(0.3)  # epoch 1, step 0 (the 5th of 8)
    optimizer.set_step(2)
    assert optimizer.lr == pytest.approx(0.1)
    one_step_epochs = SGD(0.7, schedule=LinearDecay(0.0, per="step"))
    one_step_epochs.start(8)  # one step an epoch unless told otherwise
    one_step_epochs.set_epoch(4)
    assert one_step_epochs.lr == pytest.approx(0.3)
    decaying = SGD(0.1, final_lr=0.01, decay_type="linear")
    decaying.start(3)
    assert decaying.lr == pytest.approx(0.1)


def test_start_names_a_bad_run_length():
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 1, got 0$"):
        SGD(0.1).start(0)


def test_step_says_what_is_missing():
    import numpy as np

    from xnn import Dense, MeanSquaredError, NeuralNetwork

    optimizer = SGD(0.1)
    with pytest.raises(RuntimeError, match=r"^the optimizer has no network; set optimizer\.net "
                                           r"or use a Trainer$"):
        optimizer.step()
    optimizer.net = NeuralNetwork([Dense(2)], MeanSquaredError())
    with pytest.raises(RuntimeError, match=r"^the network has no parameters yet; run a forward "
                                           r"pass first$"):
        optimizer.step()
    optimizer.net.forward(np.ones((1, 3)))


def test_nesterov_is_checked_and_kept():
    with pytest.raises(TypeError, match=r"^nesterov must be True or False, got 'yes'$"):
        SGDMomentum(0.1, nesterov="yes")
    with pytest.raises(ValueError, match=r"^nesterov=True needs momentum > 0$"):
        SGDMomentum(0.1, momentum=0.0, nesterov=True)
    assert SGDMomentum(0.1, nesterov=True).nesterov is True
    assert SGDMomentum(0.1, nesterov=False).nesterov is False


def _built(dtype="float32"):
    import numpy as np

    from xnn import Dense, MeanSquaredError, NeuralNetwork

    net = NeuralNetwork([Dense(500)], MeanSquaredError(), dtype=dtype)
    X, y = np.ones((4, 200)), np.zeros((4, 500))
    net.train_batch(X, y)
    return net, lambda: net.train_batch(X, y)


def _memory(call):
    """(bytes NumPy still holds after ``call()``, the most it held during it), beyond before."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make", [
    lambda: SGD(0.1, weight_decay=0.01), lambda: SGDMomentum(0.1, weight_decay=0.01),
    lambda: Adam(weight_decay=0.01), lambda: RMSProp(weight_decay=0.01, momentum=0.5),
    lambda: AdaGrad(weight_decay=0.01), lambda: AdamW(weight_decay=0.01)])
def test_a_step_allocates_nothing_once_warm(make):
    """L2 weight decay's second work array is made once, in the parameters' dtype, and kept."""
    net, backward = _built()
    optimizer = make()
    optimizer.net = net
    optimizer.step()  # makes the state and the work arrays
    backward()
    _, peak = _memory(optimizer.step)
    assert peak < net.store.values.nbytes // 10


@pytest.mark.parametrize(("make", "arrays"), [(lambda: SGD(0.1), 0), (lambda: AdamW(), 2),
                                              (lambda: SGDMomentum(0.1), 1)])
def test_the_first_step_keeps_only_the_state_it_needs(make, arrays):
    """No second work array without L2 weight decay (AdamW decays θ directly)."""
    net, _ = _built()
    optimizer = make()
    optimizer.net = net
    assert optimizer.state is None  # before the first step, even with a built network
    held, _ = _memory(optimizer.step)
    size = net.store.values.nbytes
    assert arrays * size <= held < (arrays + 0.1) * size


@pytest.mark.parametrize(("options", "message"), [
    ({"final_lr": -1}, r"^final_lr must be a number in \[0\.0, inf\], got -1$"),
    ({"weight_decay": -0.1}, r"^weight_decay must be a number in \[0\.0, inf\], got -0\.1$"),
    ({"clip_norm": 0.0}, r"^clip_norm must be a number in \(0\.0, inf\], got 0\.0$"),
    ({"final_lr": 0, "decay_type": "exponential"},
     r"^exponential decay needs final_lr > 0 \(it cannot decay to 0\)$"),
    ({"final_lr": 0.01, "decay_type": "linear", "schedule": CosineDecay()},
     r"^give either decay_type \(the book's\) or schedule=, not both$"),
])
def test_bad_common_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        SGD(0.1, **options)
