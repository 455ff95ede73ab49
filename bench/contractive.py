"""The contractive AE's Jacobian penalty, exact against Hutchinson's estimate: seconds per
optimiser step of the convolutional contractive AE on the shared MNIST training images (batch
128, 30 steps, one epoch's validation pass included).

    python bench/contractive.py        # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import time

from common import load_mnist, machine, print_table, write_json

STEPS = 30


def main() -> None:
    from aetool import Autoencoder

    x_train = load_mnist()[0][:, None]
    rows = []
    for mode in ("estimate", "exact"):
        start = time.perf_counter()
        Autoencoder(variant="contractive", epochs=1, max_steps=STEPS, device="cpu",
                    variant_params={"backbone": "conv", "jacobian": mode}).fit(x_train)
        rows.append({"jacobian": mode,
                     "seconds_per_step": (time.perf_counter() - start) / STEPS})
    rows[1]["times_slower"] = rows[1]["seconds_per_step"] / rows[0]["seconds_per_step"]
    print_table(rows, ["jacobian", "seconds_per_step", "times_slower"])
    write_json("contractive.json", {"protocol": __doc__, "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
