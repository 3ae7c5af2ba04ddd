"""Trains one small network in Keras 3 (JAX backend, CPU) from fastfc's initial weights on the
same batches, and writes the weights after training: the reference side of tests/keras_parity.rs.

Usage: keras_parity.py CASE.json OUT.json. CASE holds the data (x: rows x inputs, y), the layer
weights in fastfc's layout (W as (out, in), like torch.nn.Linear; Keras' kernel is (in, out)),
the optimizer with its parameters, the schedule, the activation, batch size and epochs. Batches
are taken in order (shuffle=False), as the Rust side feeds them. fastfc's L2 weight decay (wd·p
added to the gradient, PyTorch's semantics) is Keras' L2(wd/2) regularizer on kernels and biases;
AdamW's decoupled decay is Keras' own `weight_decay`.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import keras  # noqa: E402


def schedule(case, steps_per_epoch):
    s = case["schedule"]
    lr = case["learning_rate"]
    kind = s.get("kind", "constant")
    S = steps_per_epoch
    if kind == "constant":
        return lr
    if kind == "cosine":
        w = int(round(s.get("warmup_epochs", 0.0) * S))
        d = max(int(round(s["decay_epochs"] * S)) - w, 1)
        if w > 0:
            return keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=0.0, decay_steps=d, warmup_target=lr, warmup_steps=w
            )
        return keras.optimizers.schedules.CosineDecay(initial_learning_rate=lr, decay_steps=d)
    n = max(int(round(s["decay_epochs"] * S)), 1)
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=lr,
        decay_steps=n,
        decay_rate=s["decay_rate"],
        staircase=kind == "step",
    )


def optimizer(case, lr):
    o = case["optimizer"]
    k = case["knobs"]
    eps = 1e-7
    if o == "adam":
        return keras.optimizers.Adam(lr, beta_1=k.get("beta_1", 0.9), beta_2=k.get("beta_2", 0.999), epsilon=eps)
    if o == "adamw":
        return keras.optimizers.AdamW(
            lr,
            weight_decay=k.get("weight_decay", 0.004),
            beta_1=k.get("beta_1", 0.9),
            beta_2=k.get("beta_2", 0.999),
            epsilon=eps,
        )
    if o == "lion":
        return keras.optimizers.Lion(lr, beta_1=k.get("beta_1", 0.9), beta_2=k.get("beta_2", 0.99))
    if o == "sgd":
        return keras.optimizers.SGD(lr, momentum=k.get("momentum", 0.0), nesterov=k.get("nesterov", False))
    if o == "rmsprop":
        return keras.optimizers.RMSprop(lr, rho=k.get("rho", 0.9), momentum=k.get("momentum", 0.0), epsilon=eps)
    if o == "adagrad":
        return keras.optimizers.Adagrad(lr, initial_accumulator_value=0.1, epsilon=eps)
    raise SystemExit(f"unknown optimizer {o}")


def main():
    case = json.load(open(sys.argv[1]))
    x = np.asarray(case["x"], dtype=np.float32).reshape(-1, case["inputs"])
    y = np.asarray(case["y"], dtype=np.int32)
    l2 = 0.0 if case["optimizer"] == "adamw" else case["knobs"].get("weight_decay", 0.0)
    reg = (lambda: keras.regularizers.L2(l2 / 2)) if l2 > 0 else (lambda: None)
    dims = case["dims"]
    layers = [keras.Input((dims[0],))]
    for i in range(1, len(dims)):
        last = i == len(dims) - 1
        layers.append(
            keras.layers.Dense(
                dims[i],
                activation=None if last else case["activation"],
                kernel_regularizer=reg(),
                bias_regularizer=reg(),
            )
        )
    model = keras.Sequential(layers)
    for layer, (w, b) in zip(model.layers, case["weights"]):
        n_out, n_in = len(b), len(w) // len(b)
        layer.set_weights([np.asarray(w, np.float32).reshape(n_out, n_in).T, np.asarray(b, np.float32)])
    steps = -(-len(y) // case["batch_size"])
    model.compile(
        optimizer=optimizer(case, schedule(case, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=case["batch_size"], epochs=case["epochs"], shuffle=False, verbose=0)
    out = []
    for layer in model.layers:
        k, b = layer.get_weights()
        out.append([k.T.reshape(-1).astype(float).tolist(), b.astype(float).tolist()])
    json.dump({"weights": out, "keras": keras.__version__}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
