"""Silero's sequence ONNX graph rebuilt with its convolutions as matrix products.

The shipped graph runs its STFT and four encoder layers as ``Conv`` over a batch of one frame
each: onnxruntime then loops over thousands of tiny convolutions (258 x 256 by 4 positions), and
those loops are ~90 % of the VAD's time. Every frame's encoder is independent of the others, so
the same arithmetic can run as one matrix product per layer over all frames of a block: each
layer's kernel taps are laid side by side (im2col by ``Slice``/``Concat`` on the frame axis) and
multiplied by the kernel reshaped to (taps x channels, outputs). The LSTM and the output layer
are kept as they are. The weights are read from the installed package's model file; the rebuilt
file is cached under the models cache dir, keyed by that file's sha256 (``import onnx`` alone
costs 0.6 s per process, which every worker would pay again).

Results equal the shipped graph's to float32 rounding (max |diff| 1.1e-5 on 38 real clips;
``test_vad`` pins 2e-5 against silero's own front-end) at about 3x the speed on one core.
Sums run in another order, so probabilities are not bit-identical; segment spans only change
where a probability sits within that rounding of a threshold.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_STFT_KERNEL, _STFT_HOP, _CONTEXT_AND_FRAME, _HIDDEN = 256, 128, 576, 128
_REFLECT_PAD = (_STFT_KERNEL - _STFT_HOP) // 2  # silero pads each frame on the right only

# (name, kernel, stride, pad) of each encoder Conv in the shipped graph, in order
_ENCODER = (("encoder.0", 3, 1, 1), ("encoder.1", 3, 2, 1), ("encoder.2", 3, 2, 1), ("encoder.3", 3, 1, 1))
REWRITE_VERSION = 1  # bump when the rebuilt graph changes: cached files of older versions are not read


class UnexpectedGraphError(ValueError):
    """The installed silero-vad model is not laid out as this rewrite expects."""

    def __init__(self, what: str) -> None:
        super().__init__(f"silero-vad graph: {what}; this silero-vad version cannot be rebuilt, "
                         f"run its graph as shipped with `--set vad.graph=stock`")


def cached_gemm_model(model_path: str, cache_dir: str, rebuild: bool = False) -> str | bytes:
    """Path of the rebuilt model for ``model_path`` in ``cache_dir``, building it when missing
    (or when ``rebuild``). Written to a temp file and renamed, so racing workers never read half
    a file. Where the cache cannot be written (a read-only home), the model's bytes instead."""
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:16]
    target = Path(cache_dir).expanduser() / "silero-vad-gemm" / f"{digest}-v{REWRITE_VERSION}.onnx"
    if target.is_file() and not rebuild:
        return str(target)
    model = gemm_model_bytes(model_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".onnx")
    except OSError as err:
        log.warning("cannot cache the rebuilt silero-vad graph in %s (%s); every process builds it", target.parent, err)
        return model
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(model)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return str(target)


def gemm_model_bytes(model_path: str) -> bytes:
    """The rewritten model, serialized, for ``onnxruntime.InferenceSession``.

    Same inputs and outputs as the shipped sequence model: ``input`` (frames, 576), ``h``/``c``
    (1, 1, 128) in; ``speech_probs`` (frames,), ``hn``/``cn`` out.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(model_path)
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    _check_layout(model.graph, weights)
    lstm = next(node for node in model.graph.node if node.op_type == "LSTM")
    return _Builder(weights, lstm_weights=tuple(lstm.input[1:4])).model().SerializeToString()


def _check_layout(graph, weights: dict[str, np.ndarray]) -> None:  # noqa: ANN001 - onnx GraphProto
    """Refuse a graph whose shapes or convolution settings differ from the ones rewritten here."""
    import onnx

    convs = {node.name: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
             for node in graph.node if node.op_type == "Conv"}
    expected = {"/stft/Conv": (_STFT_KERNEL, _STFT_HOP, 0)}
    expected |= {f"/{name}/Conv": (kernel, stride, pad) for name, kernel, stride, pad in _ENCODER}
    for name, (kernel, stride, pad) in expected.items():
        attrs = convs.get(name)
        if attrs is None or (list(attrs.get("kernel_shape", [])), list(attrs.get("strides", [1])),
                             list(attrs.get("pads", [0, 0]))) != ([kernel], [stride], [pad, pad]):
            raise UnexpectedGraphError(f"{name} is missing or not k={kernel} s={stride} p={pad}")
    shapes = {"stft.forward_basis_buffer": (2 * (_STFT_KERNEL // 2 + 1), 1, _STFT_KERNEL),
              "encoder.0.weight": (128, 129, 3), "encoder.1.weight": (64, 128, 3),
              "encoder.2.weight": (64, 64, 3), "encoder.3.weight": (_HIDDEN, 64, 3),
              "output.weight": (1, _HIDDEN, 1)}
    for name, shape in shapes.items():
        if weights.get(name) is None or weights[name].shape != shape:
            raise UnexpectedGraphError(f"{name} is not of shape {shape}")
    inputs = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.input}
    if inputs.get("input", [None, None])[1:] != [_CONTEXT_AND_FRAME]:
        raise UnexpectedGraphError(f"input is {inputs.get('input')}, not (frames, 576)")


class _Builder:
    """Collects nodes and initializers of the rewritten graph."""

    def __init__(self, weights: dict[str, np.ndarray], lstm_weights: tuple[str, str, str]) -> None:
        self.weights, self.lstm_weights = weights, lstm_weights
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.setdefault(name, np.ascontiguousarray(value))
        return name

    def ints(self, *values: int) -> str:
        return self.const("i64_" + "_".join(str(v).replace("-", "m") for v in values),
                          np.array(values, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs) -> str:  # noqa: ANN003
        from onnx import helper

        outputs = outputs or [f"{op_type.lower()}_{len(self.nodes)}"]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs[0]

    def taps(self, x: str, kernel: int, stride: int, out_len: int) -> str:
        """(M, positions + 2, C) zero-padded -> (M, out_len, kernel * C), tap-major."""
        parts = [self.op("Slice", [x, self.ints(k), self.ints(k + stride * (out_len - 1) + 1), self.ints(1),
                                   self.ints(stride)]) for k in range(kernel)]
        return parts[0] if kernel == 1 else self.op("Concat", parts, axis=2)

    def dense(self, x: str, name: str, taps: tuple[int, ...]) -> str:
        """One encoder layer as MatMul + bias + ReLU; ``taps`` are the kernel taps that see data."""
        weight = self.weights[f"{name}.weight"]  # (out, in, kernel)
        matrix = np.concatenate([weight[:, :, k].T for k in taps], axis=0).astype(np.float32)
        y = self.op("MatMul", [x, self.const(f"{name}.matrix", matrix)])
        y = self.op("Add", [y, self.const(f"{name}.bias", self.weights[f"{name}.bias"].astype(np.float32))])
        return self.op("Relu", [y])

    def model(self):  # noqa: ANN201 - onnx ModelProto
        from onnx import TensorProto, helper, numpy_helper

        hop = _STFT_HOP
        x = self.op("Pad", ["input", self.ints(0, 0, 0, _REFLECT_PAD)], mode="reflect")  # (M, 640)
        blocks = self.op("Reshape", [x, self.ints(-1, (_CONTEXT_AND_FRAME + _REFLECT_PAD) // hop, hop)])
        windows = self.op("Concat", [self.op("Slice", [blocks, self.ints(0), self.ints(4), self.ints(1)]),
                                     self.op("Slice", [blocks, self.ints(1), self.ints(5), self.ints(1)])], axis=2)
        basis = self.weights["stft.forward_basis_buffer"][:, 0, :].T.astype(np.float32)  # (256, 258)
        spectrum = self.op("MatMul", [windows, self.const("stft.basis", basis)])  # (M, 4, 258)
        bins = basis.shape[1] // 2
        real = self.op("Slice", [spectrum, self.ints(0), self.ints(bins), self.ints(2)])
        imag = self.op("Slice", [spectrum, self.ints(bins), self.ints(2 * bins), self.ints(2)])
        two = self.const("two", np.array(2.0, dtype=np.float32))
        h = self.op("Sqrt", [self.op("Add", [self.op("Pow", [real, two]), self.op("Pow", [imag, two])])])
        pad_time = self.ints(0, 1, 0, 0, 1, 0)
        # encoder.0: 4 -> 4 positions; encoder.1: 4 -> 2 (stride 2)
        h = self.dense(self.taps(self.op("Pad", [h, pad_time]), 3, 1, 4), "encoder.0", (0, 1, 2))
        h = self.dense(self.taps(self.op("Pad", [h, pad_time]), 3, 2, 2), "encoder.1", (0, 1, 2))
        # encoder.2: 2 -> 1, its left tap sees padding only; encoder.3: 1 -> 1, only the centre tap
        h = self.dense(self.op("Reshape", [h, self.ints(-1, 1, 2 * 64)]), "encoder.2", (1, 2))
        h = self.dense(h, "encoder.3", (1,))  # (M, 1, 128): (sequence, batch 1, features) for the LSTM
        w, r, b = self.lstm_weights
        y = self.op("LSTM", [h, self.const(w, self.weights[w]), self.const(r, self.weights[r]),
                             self.const(b, self.weights[b]), "", "h", "c"], ["lstm_y", "hn", "cn"],
                    hidden_size=_HIDDEN)
        y = self.op("Relu", [self.op("Reshape", [y, self.ints(-1, _HIDDEN)])])
        y = self.op("MatMul", [y, self.const("output.matrix", self.weights["output.weight"][0].astype(np.float32))])
        y = self.op("Sigmoid", [self.op("Add", [y, self.const("output.bias_",
                                                                  self.weights["output.bias"].astype(np.float32))])])
        self.op("Reshape", [y, self.ints(-1)], ["speech_probs"])
        state = [1, 1, _HIDDEN]
        graph = helper.make_graph(
            self.nodes, "silero_vad_gemm",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["frames", _CONTEXT_AND_FRAME]),
             helper.make_tensor_value_info("h", TensorProto.FLOAT, state),
             helper.make_tensor_value_info("c", TensorProto.FLOAT, state)],
            [helper.make_tensor_value_info("speech_probs", TensorProto.FLOAT, ["frames"]),
             helper.make_tensor_value_info("hn", TensorProto.FLOAT, state),
             helper.make_tensor_value_info("cn", TensorProto.FLOAT, state)],
            [numpy_helper.from_array(value, name) for name, value in self.inits.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
        model.ir_version = 8
        return model
