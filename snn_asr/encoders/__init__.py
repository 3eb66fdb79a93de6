"""Encoders built from the neurons: :class:`~snn_asr.encoders.spiking_rnn.SpikingRNN` (SpeechBrain's
RNN interface) and the adapters that put it into SpeechBrain's CRDNN, Transformer and
CNN + RNN pipelines (:mod:`~snn_asr.encoders.pipelines`)."""
