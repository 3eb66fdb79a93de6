"""An exported encoder and CTC head (``model.onnx``) run by onnxruntime, as a drop-in for the torch ones.

:class:`OnnxEncoder` takes :class:`~snn_asr.SpikingRNN`'s call, ``(x, hx=None) -> (output, hidden)``,
so :class:`~snn_asr.inference.SpikingASR` runs an ONNX folder (``tools/export_onnx.py``) as it runs
a torch one: whole files, chunks, streaming and every output format. Its output is already the CTC
log-probabilities (the folder's ``ctc_lin`` and ``log_softmax`` are identities). onnxruntime is
an optional dependency: ``pip install 'snn-asr[onnx]'``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snn_asr.dataio import DataError

__all__ = [
    "FEATURES",
    "LOG_PROBS",
    "ONNX_FILE",
    "SPIKES",
    "STATE",
    "STATE_OUT",
    "OnnxEncoder",
    "onnxruntime_or_fail",
]

ONNX_FILE = "model.onnx"
"""The graph's file in an ONNX model folder (``tools/export_onnx.py``)."""
FEATURES, STATE = "feats", "state"
"""The graph's inputs: Fbank (batch, time, n_mels), the layers' state (layers, 3, batch, hidden)."""
LOG_PROBS, STATE_OUT, SPIKES = "log_probs", "state_out", "spikes"
"""The graph's outputs: CTC log-probabilities (batch, time, vocab), the state after the last frame,
the last layer's spikes (batch, time, hidden)."""
INSTALL = "pip install 'snn-asr[onnx]' (onnx and onnxruntime)"


def onnxruntime_or_fail():
    """The ``onnxruntime`` module, or a one-line :class:`ImportError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"the onnxruntime backend needs onnxruntime: {INSTALL}") from None
    return onnxruntime


class OnnxEncoder(nn.Module):
    """``model.onnx`` in an onnxruntime session: (batch, time, n_mels) Fbank -> CTC log-probabilities.

    Arguments
    ---------
    model_file : str or PathLike
        The graph written by :func:`~snn_asr.inference.onnx_export.export_onnx`.
    threads : int
        onnxruntime's intra-op threads (0: its default, every core).

    Use (a folder of ``tools/export_onnx.py``; ``tests/test_onnx.py`` runs it)::

        enc = OnnxEncoder("exported/snn-an4-onnx/model.onnx")
        log_probs, state = enc(torch.randn(1, 50, 40))
        more, state = enc(torch.randn(1, 20, 40), hx=state)  # the next 20 frames
    """

    def __init__(self, model_file: str | os.PathLike, threads: int = 0):
        super().__init__()
        ort = onnxruntime_or_fail()
        path = Path(model_file)
        fix = "export the model folder again with tools/export_onnx.py"
        if not path.is_file():
            raise DataError(f"model file {str(path)!r} is missing; {fix}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: no warnings on the terminal
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ...
            why = " ".join(str(err).split())[:160]
            raise DataError(f"model file {str(path)!r} is not a loadable ONNX graph ({why}); {fix}") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if set(inputs) != {FEATURES, STATE} or set(outputs) != {LOG_PROBS, STATE_OUT, SPIKES}:
            raise DataError(
                f"model file {str(path)!r} has inputs {sorted(inputs)} and outputs {sorted(outputs)}, not "
                f"snn-asr's ({FEATURES}, {STATE} -> {LOG_PROBS}, {STATE_OUT}, {SPIKES}); {fix}"
            )
        self.model_file = path
        self.state_shape = inputs[STATE].shape  # [layers, 3, "batch", hidden]
        self.input_size = inputs[FEATURES].shape[-1]
        self.vocab_size = outputs[LOG_PROBS].shape[-1]

    def initial_state(self, batch: int) -> np.ndarray:
        """All-zero state for ``batch`` sequences, (layers, 3, batch, hidden)."""
        layers, three, _, hidden = self.state_shape
        return np.zeros((layers, three, batch, hidden), dtype=np.float32)

    def forward(
        self, x: torch.Tensor, hx: torch.Tensor | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, time, n_mels) -> log-probabilities (batch, time, vocab) and the state after the last frame.

        ``lengths`` is accepted for SpeechBrain's containers: padded frames run as any other
        (the CTC decoders stop at each sequence's length; the state is that of the last frame).
        """
        log_probs, final, _ = self.run(x, hx, [LOG_PROBS, STATE_OUT])
        return log_probs.to(x.device), final

    def run(
        self, x: torch.Tensor, hx: torch.Tensor | None = None, outputs: list[str] | None = None
    ) -> tuple[torch.Tensor | None, ...]:
        """The graph on ``x`` from state ``hx`` (zeros if ``None``): (log_probs, state_out, spikes),
        ``None`` for an output not in ``outputs`` (default: all)."""
        names = outputs or [LOG_PROBS, STATE_OUT, SPIKES]
        state = self.initial_state(x.shape[0]) if hx is None else hx.detach().cpu().numpy()
        feats = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        got = dict(zip(names, self.session.run(names, {FEATURES: feats, STATE: state})))
        return tuple(torch.from_numpy(got[n]) if n in got else None for n in (LOG_PROBS, STATE_OUT, SPIKES))
