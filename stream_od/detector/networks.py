"""Encoder / decoder / estimation networks: plain ``keras.Sequential`` stacks of Dense
layers, so the architecture is configuration (units + activation) and serializes
without custom code."""

from __future__ import annotations

from collections.abc import Sequence

import keras


def mlp(
    units: Sequence[int],
    *,
    activation: str,
    output_units: int | None = None,
    output_activation: str | None = None,
    name: str,
) -> keras.Sequential:
    layers = [
        keras.layers.Dense(int(u), activation=activation, name=f"{name}_dense{i}")
        for i, u in enumerate(units)
    ]
    if output_units is not None:
        layers.append(
            keras.layers.Dense(int(output_units), activation=output_activation, name=f"{name}_out")
        )
    return keras.Sequential(layers, name=name)
