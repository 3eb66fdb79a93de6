"""snn-asr: spiking recurrent encoders for SpeechBrain ASR recipes.

The package, by role (``docs/architecture.md`` draws it):

- :mod:`snn_asr.neurons`: the paper's equations, the reference (quantizer, batch norm, one neuron a module);
- :mod:`snn_asr.primitives`: the matrix products and reused buffers every implementation shares;
- :mod:`snn_asr.fastpaths`: fused CPU BPTT, compiled loops, event-driven inference;
- :mod:`snn_asr.dispatch`: the one place that chooses between the reference and a fast path;
- :mod:`snn_asr.encoders`: :class:`SpikingRNN` and the SpeechBrain adapters;
- :mod:`snn_asr.dataio`: reading and checking audio, transcripts and manifests;
- :mod:`snn_asr.recipes`: the recipe machinery (``Brain``, command line, LMs, plots);
- :mod:`snn_asr.inference`: model folders and the ``snn-asr`` command;
- :mod:`snn_asr.ops`: op accounting; :mod:`snn_asr.demo`, :mod:`snn_asr.quickstart`: runnable tours.
"""

from snn_asr.encoders.spiking_rnn import SpikingRNN
from snn_asr.neurons import GatedLIFNeuron, LIFNeuron, RecurrentGatedLIFNeuron, SpikeQuantizer

__all__ = ["GatedLIFNeuron", "LIFNeuron", "RecurrentGatedLIFNeuron", "SpikeQuantizer", "SpikingRNN"]
__version__ = "0.1.0"
