"""Adapters that put :class:`~snn_asr.SpikingRNN` into existing SpeechBrain pipelines.

``SpikingRNN`` itself is the drop-in for ``speechbrain.nnet.RNN.LSTM``/``GRU``/
``RNN``/``LiGRU`` (same keywords, same ``(output, hidden)`` return, same 4-D
flattening, ``lengths`` and ``hx``), and goes straight into a CRDNN as
``rnn_class: !name:snn_asr.SpikingRNN`` (hyperpyyaml turns ``!name:`` with
arguments into a ``functools.partial``, which is how ``neuron``, ``bits`` and
``threshold`` reach it). This module adds what a bare RNN cannot do on its own:

- :class:`SpikingEncoder`: a CNN front end (``speechbrain.lobes.models.convolution``
  style) followed by the spiking stack and an optional projection, as one
  encoder that returns a tensor, like ``CRDNN``;
- :class:`SpikingTransformerEncoder` and :class:`SpikingTransformerASR`: the
  spiking stack as the encoder of SpeechBrain's ``TransformerASR`` (whose
  decoder stays a Transformer), swapped in by changing the class name;
- :func:`rnn_matrix_parameters`: the weight-matrix count of a stock or spiking
  RNN from the formulas, to predict what a swap does to the model size.

See ``docs/swap_encoder.md`` for the YAML.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR
from speechbrain.nnet.containers import LengthsCapableSequential
from speechbrain.nnet.linear import Linear
from torch import nn

from snn_asr.encoders.spiking_rnn import SpikingRNN

SPIKING_GATES = {"v2": 2, "v1": 2, "lif": 1}
STOCK_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1, "LiGRU": 2, "SLiGRU": 2, "QuasiRNN": 3}
# SpeechBrain's LiGRU, SLiGRU and QuasiRNN run both directions with one set of weights.
SHARED_DIRECTIONS = {"LiGRU", "SLiGRU", "QuasiRNN"}


def rnn_matrix_parameters(
    kind: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False
) -> int:
    """Weight-matrix parameters (what :func:`snn_asr.ops.count_parameters` counts) of an RNN stack.

    Per layer, with ``in`` its input size and ``H = hidden_size``:

    - spiking ``v2``: ``2H(in + H)`` (``W`` and ``U``), ``v1``: ``2H in``, ``lif``: ``H in``;
    - SpeechBrain ``LSTM``: ``4H(in + H)``, ``GRU``: ``3H(in + H)``, ``RNN``: ``H(in + H)``,
      ``LiGRU``/``SLiGRU``: ``2H(in + H)``, ``QuasiRNN`` (``output_gate=True``): ``3H in``.

    Bidirectional layers feed ``2H`` to the next layer; ``SpikingRNN`` and ``LSTM``/``GRU``/``RNN``
    hold one set of weights per direction, ``LiGRU``/``SLiGRU``/``QuasiRNN`` share one.

    Arguments
    ---------
    kind : str
        ``"v2"``, ``"v1"``, ``"lif"``, ``"LSTM"``, ``"GRU"``, ``"RNN"``, ``"LiGRU"``, ``"SLiGRU"``
        or ``"QuasiRNN"``.
    input_size, hidden_size, num_layers : int
        Sizes of the stack.
    bidirectional : bool
        Both directions.

    Returns
    -------
    int
        Number of weights in 2-D matrices.

    Example
    -------
    >>> rnn_matrix_parameters("v1", 40, 550, num_layers=2)
    649000
    >>> rnn_matrix_parameters("LSTM", 40, 8) - rnn_matrix_parameters("v2", 40, 8)
    768
    >>> rnn_matrix_parameters("v2", 5, 8, num_layers=2, bidirectional=True)  # 2 * (2*8*(5+8) + 2*8*(16+8))
    1184
    """
    if kind not in SPIKING_GATES | STOCK_GATES:
        raise ValueError(f"unknown RNN kind {kind!r}; expected one of {sorted(SPIKING_GATES | STOCK_GATES)}")
    dirs = 2 if bidirectional else 1
    gates = SPIKING_GATES.get(kind) or STOCK_GATES[kind]
    recurrent = 0 if kind in ("v1", "lif", "QuasiRNN") else hidden_size  # U of v2, the stock RNNs' own
    total = 0
    for layer in range(num_layers):
        fan_in = input_size if layer == 0 else hidden_size * dirs
        total += gates * hidden_size * (fan_in + recurrent)
    return total if kind in SHARED_DIRECTIONS else total * dirs


class SpikingEncoder(LengthsCapableSequential):
    """An optional front end (e.g. a CNN), the spiking stack, and an optional projection.

    A ``speechbrain.nnet.containers.LengthsCapableSequential``: shapes are inferred
    from ``input_shape``, ``lengths`` reach the spiking stack, and the output is a
    tensor (the RNN's hidden state is dropped), so it replaces a ``CRDNN``-style
    ``enc`` in a recipe. ``front_end`` is a class or ``functools.partial`` that
    takes ``input_shape`` (``!name:speechbrain.lobes.models.convolution.ConvolutionFrontEnd``
    in YAML) or a built module; 4-D front-end outputs (batch, time, freq, channels)
    are flattened by the spiking stack.

    Arguments
    ---------
    input_shape : sequence of int or None
        Input shape, e.g. ``[None, None, n_mels]``.
    hidden_size : int
        Spiking neurons per layer and direction.
    num_layers : int
        Spiking layers.
    front_end : callable or nn.Module, optional
        Built with ``input_shape=`` if it accepts it; its time stride must keep
        relative lengths valid (as SpeechBrain's convolutional front ends do).
    output_size : int, optional
        Adds a ``speechbrain.nnet.linear.Linear`` projection to this size.
    bidirectional : bool
        Both directions in every layer (see :class:`~snn_asr.SpikingRNN`).
    dropout : float
        Per-sequence dropout of the spiking layers.
    neuron, bits, threshold, input_quant_bits, scale_update
        Passed to :class:`~snn_asr.SpikingRNN`.

    Example
    -------
    >>> from functools import partial
    >>> from speechbrain.lobes.models.convolution import ConvolutionFrontEnd
    >>> cnn = partial(ConvolutionFrontEnd, num_blocks=1, num_layers_per_block=1, out_channels=[4],
    ...               kernel_sizes=[3], strides=[2], residuals=[False])
    >>> enc = SpikingEncoder([None, None, 20], hidden_size=8, num_layers=2, front_end=cnn, output_size=6)
    >>> enc(torch.randn(3, 30, 20), lengths=torch.tensor([1.0, 0.8, 0.5])).shape
    torch.Size([3, 15, 6])
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        hidden_size: int,
        num_layers: int = 1,
        front_end: Callable[..., nn.Module] | nn.Module | None = None,
        output_size: int | None = None,
        bidirectional: bool = False,
        dropout: float = 0.0,
        neuron: str = "v2",
        bits: int = 6,
        threshold: int = 3,
        input_quant_bits: int | None = None,
        scale_update: str = "batch",
    ):
        super().__init__(input_shape=input_shape)
        if front_end is not None:
            self.append(front_end, layer_name="front_end")
        self.append(
            SpikingRNN,
            layer_name="rnn",
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            neuron=neuron,
            bits=bits,
            threshold=threshold,
            input_quant_bits=input_quant_bits,
            scale_update=scale_update,
        )
        if output_size is not None:
            self.append(Linear, layer_name="proj", n_neurons=output_size, bias=True)


class SpikingTransformerEncoder(nn.Module):
    """The spiking stack behind the call signature of SpeechBrain's ``TransformerEncoder``.

    ``(batch, time, d_model)`` in, ``(batch, time, d_model)`` out: the spikes are
    projected back to ``d_model`` and layer-normalized so a Transformer decoder
    can attend to them. ``src_key_padding_mask`` (True on padding) becomes the
    spiking stack's ``lengths``; ``src_mask``, ``pos_embs`` and
    ``dynchunktrain_config`` are accepted and not needed (a one-directional
    spiking stack is causal by construction).

    Arguments
    ---------
    d_model : int
        Model width of the surrounding Transformer.
    hidden_size : int
        Spiking neurons per layer and direction.
    num_layers : int
        Spiking layers.
    bidirectional : bool
        Both directions in every layer (not causal).
    dropout : float
        Per-sequence dropout of the spiking layers.
    neuron, bits, threshold, input_quant_bits, scale_update
        Passed to :class:`~snn_asr.SpikingRNN`.
    output_hidden_states : bool
        Also return ``[output]`` as the list of hidden states (``TransformerASR``'s option).

    Example
    -------
    >>> enc = SpikingTransformerEncoder(d_model=16, hidden_size=8, num_layers=2)
    >>> pad = torch.tensor([[False] * 10, [False] * 6 + [True] * 4])
    >>> out, attn = enc(torch.randn(2, 10, 16), src_key_padding_mask=pad)
    >>> out.shape, attn
    (torch.Size([2, 10, 16]), [])
    """

    def __init__(
        self,
        d_model: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        neuron: str = "v2",
        bits: int = 6,
        threshold: int = 3,
        input_quant_bits: int | None = None,
        scale_update: str = "batch",
        output_hidden_states: bool = False,
    ):
        super().__init__()
        self.rnn = SpikingRNN(
            hidden_size,
            input_size=d_model,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            neuron=neuron,
            bits=bits,
            threshold=threshold,
            input_quant_bits=input_quant_bits,
            scale_update=scale_update,
        )
        self.proj = nn.Linear(hidden_size * (2 if bidirectional else 1), d_model)
        self.norm = nn.LayerNorm(d_model)
        self.output_hidden_states = output_hidden_states

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        pos_embs: torch.Tensor | None = None,
        dynchunktrain_config: object | None = None,
    ) -> tuple:
        """Encodes ``src`` (batch, time, d_model).

        Returns ``(output, [])`` with ``output`` (batch, time, d_model), or
        ``(output, [], [output])`` with ``output_hidden_states``, as ``TransformerEncoder`` does.
        """
        lengths = None
        if src_key_padding_mask is not None:
            lengths = (~src_key_padding_mask).sum(1).float() / src.shape[1]
        spikes, _ = self.rnn(src, lengths=lengths)
        output = self.norm(self.proj(spikes))
        if self.output_hidden_states:
            return output, [], [output]
        return output, []


class SpikingTransformerASR(TransformerASR):
    """``TransformerASR`` whose encoder is a spiking stack; the Transformer decoder is unchanged.

    Takes every ``TransformerASR`` argument, so a recipe swaps encoders by changing
    ``!new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR`` to
    ``!new:snn_asr.encoders.pipelines.SpikingTransformerASR``. ``encode``, ``forward``,
    ``decode`` and SpeechBrain's ``S2STransformerGreedySearcher``/``BeamSearcher``
    work as before. Encoder-only arguments (``num_encoder_layers``,
    ``encoder_module``, ``kernel_size``, ...) only set defaults for the spiking stack
    (``rnn_layers`` defaults to ``num_encoder_layers``); no Transformer/Conformer
    encoder is built. Streaming (``encode_streaming``) is not supported.

    Arguments
    ---------
    *args, **kwargs
        ``TransformerASR``'s arguments (``tgt_vocab``, ``input_size``, ``d_model``, ...).
    rnn_neurons : int, optional
        Spiking neurons per layer and direction (default ``d_model``).
    rnn_layers : int, optional
        Spiking layers (default ``num_encoder_layers``).
    rnn_bidirectional : bool
        Both directions in every layer; not allowed with ``causal=True``.
    rnn_dropout : float
        Per-sequence dropout of the spiking layers.
    neuron, bits, threshold, input_quant_bits, scale_update
        Passed to :class:`~snn_asr.SpikingRNN`.

    Example
    -------
    >>> net = SpikingTransformerASR(tgt_vocab=10, input_size=20, d_model=16, nhead=2, num_encoder_layers=2,
    ...                             num_decoder_layers=1, d_ffn=32, causal=True, rnn_neurons=8)
    >>> enc, dec = net(torch.randn(2, 12, 20), torch.randint(1, 10, (2, 5)), torch.tensor([1.0, 0.5]))
    >>> enc.shape, dec.shape, type(net.encoder).__name__
    (torch.Size([2, 12, 16]), torch.Size([2, 5, 16]), 'SpikingTransformerEncoder')
    """

    def __init__(
        self,
        *args,
        rnn_neurons: int | None = None,
        rnn_layers: int | None = None,
        rnn_bidirectional: bool = False,
        rnn_dropout: float = 0.0,
        neuron: str = "v2",
        bits: int = 6,
        threshold: int = 3,
        input_quant_bits: int | None = None,
        scale_update: str = "batch",
        **kwargs,
    ):
        bound = inspect.signature(TransformerASR).bind_partial(*args, **kwargs).arguments
        d_model = bound.get("d_model", 512)
        num_encoder_layers = bound.get("num_encoder_layers", 6)
        num_decoder_layers = bound.get("num_decoder_layers", 6)
        # Build no Transformer/Conformer encoder when a decoder keeps TransformerInterface's
        # "not both zero" assertion satisfied; otherwise build a minimal one and replace it.
        bound["num_encoder_layers"] = 0 if num_decoder_layers > 0 else 1
        bound.setdefault("causal", None)
        super().__init__(**bound)
        if self.causal and rnn_bidirectional:
            raise ValueError("rnn_bidirectional=True reads the future; set causal: False to use it")
        self.encoder = SpikingTransformerEncoder(
            d_model,
            hidden_size=rnn_neurons or d_model,
            num_layers=rnn_layers or num_encoder_layers,
            bidirectional=rnn_bidirectional,
            dropout=rnn_dropout,
            neuron=neuron,
            bits=bits,
            threshold=threshold,
            input_quant_bits=input_quant_bits,
            scale_update=scale_update,
            output_hidden_states=bound.get("output_hidden_states", False),
        )

    def encode_streaming(self, src: torch.Tensor, context: object) -> torch.Tensor:
        """Not supported: the spiking encoder has no streaming context (pass ``hx`` to ``SpikingRNN``)."""
        raise NotImplementedError("SpikingTransformerASR does not support encode_streaming")

    def make_streaming_context(self, *args, **kwargs) -> object:
        """Not supported (see :meth:`encode_streaming`)."""
        raise NotImplementedError("SpikingTransformerASR does not support streaming contexts")
