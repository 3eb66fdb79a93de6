"""snn-asr: spiking recurrent encoders for SpeechBrain ASR recipes."""

from .neurons import GatedLIFNeuron, LIFNeuron, RecurrentGatedLIFNeuron
from .quantizer import SpikeQuantizer
from .spiking_rnn import SpikingRNN

__all__ = ["GatedLIFNeuron", "LIFNeuron", "RecurrentGatedLIFNeuron", "SpikeQuantizer", "SpikingRNN"]
__version__ = "0.1.0"
