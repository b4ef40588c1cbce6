"""The ONNX graph of all-MiniLM-L6-v2 (a 6-layer BERT), built from its safetensors weights.

No exporter and no torch: each node below is one step of BERT's forward pass, with the
weights as initializers. Inputs ``input_ids`` and ``attention_mask`` (int64, batch x length,
both dynamic); output ``hidden`` (float32, batch x length x 384), which the embedder mean-pools
over the mask. GELU is written as ``0.5 x (1 + erf(x / sqrt 2))`` and layer norms as
``LayerNormalization``: onnxruntime's optimizer fuses both into its own kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

HIDDEN = 384
HEADS = 12
LAYERS = 6
OPSET = 17


class _Graph:
    """Nodes and initializers being collected, with fresh names for intermediate values."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: NDArray[Any]) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def linear(self, x: str, w: dict[str, NDArray[Any]], name: str) -> str:
        weight = self.const(f"{name}.wt", w[f"{name}.weight"].T)
        return self.op(
            "Add", self.op("MatMul", x, weight), self.const(f"{name}.b", w[f"{name}.bias"])
        )

    def norm(self, x: str, w: dict[str, NDArray[Any]], name: str) -> str:
        scale, bias = (
            self.const(f"{name}.w", w[f"{name}.weight"]),
            self.const(f"{name}.b", w[f"{name}.bias"]),
        )
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=1e-12)


def _embeddings(g: _Graph, w: dict[str, NDArray[Any]]) -> str:
    words = g.op("Gather", g.const("word", w["embeddings.word_embeddings.weight"]), "input_ids")
    length = g.op("Shape", "input_ids", start=1, end=2)  # [length], one dimension
    origin = g.const("origin", np.array([0], np.int64))
    table = g.const("position", w["embeddings.position_embeddings.weight"])
    where = g.op("Slice", table, origin, length, origin)  # the first `length` positions
    token_type = g.const("token_type", w["embeddings.token_type_embeddings.weight"][0])
    return g.norm(g.op("Add", g.op("Add", words, where), token_type), w, "embeddings.LayerNorm")


def _mask(g: _Graph) -> str:
    present = g.op("Cast", "attention_mask", to=1)  # float
    axes = g.const("mask_axes", np.array([1, 2], np.int64))
    absent = g.op(
        "Sub", g.const("f_one", np.array(1.0, np.float32)), g.op("Unsqueeze", present, axes)
    )
    return g.op("Mul", absent, g.const("minus_inf", np.array(-1e9, np.float32)))


def _attention(g: _Graph, x: str, mask: str, w: dict[str, NDArray[Any]], p: str) -> str:
    head = HIDDEN // HEADS
    split = g.const(f"{p}.heads", np.array([0, 0, HEADS, head], np.int64))
    merged = g.const(f"{p}.merged", np.array([0, 0, HIDDEN], np.int64))

    def heads(name: str, perm: list[int]) -> str:
        return g.op(
            "Transpose", g.op("Reshape", g.linear(x, w, f"{p}self.{name}"), split), perm=perm
        )

    q, k, v = heads("query", [0, 2, 1, 3]), heads("key", [0, 2, 3, 1]), heads("value", [0, 2, 1, 3])
    scale = g.const(f"{p}.scale", np.array(1 / math.sqrt(head), np.float32))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), mask)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merged)
    return g.norm(
        g.op("Add", x, g.linear(context, w, f"{p}output.dense")), w, f"{p}output.LayerNorm"
    )


def _feed_forward(g: _Graph, x: str, w: dict[str, NDArray[Any]], p: str) -> str:
    h = g.linear(x, w, f"{p}intermediate.dense")
    erf = g.op("Erf", g.op("Div", h, g.const(f"{p}.sqrt2", np.array(math.sqrt(2), np.float32))))
    half = g.const(f"{p}.half", np.array(0.5, np.float32))
    ones = g.const(f"{p}.one", np.array(1.0, np.float32))
    gelu = g.op("Mul", g.op("Mul", h, half), g.op("Add", erf, ones))
    out = g.linear(gelu, w, f"{p}output.dense")
    return g.norm(g.op("Add", x, out), w, f"{p}output.LayerNorm")


def build(weights: dict[str, NDArray[Any]]) -> bytes:
    """The serialized ONNX model of the encoder with these weights."""
    g = _Graph()
    x, mask = _embeddings(g, weights), _mask(g)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        x = _attention(g, x, mask, weights, p + "attention.")
        x = _feed_forward(g, x, weights, p)
    g.nodes.append(g.helper.make_node("Identity", [x], ["hidden"]))
    h, t = g.helper, 1  # onnx.TensorProto.FLOAT
    graph = h.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            h.make_tensor_value_info(n, 7, ["batch", "length"])
            for n in ("input_ids", "attention_mask")
        ],
        [h.make_tensor_value_info("hidden", t, ["batch", "length", HIDDEN])],
        g.initializers,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="mercato")
    model.ir_version = 8
    return bytes(model.SerializeToString())
