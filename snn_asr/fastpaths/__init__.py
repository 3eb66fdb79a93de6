"""Fast implementations of the reference equations (:mod:`snn_asr.neurons`), each tested to agree with it.

- :mod:`~snn_asr.fastpaths.fused`: the CPU recurrence with a hand-written BPTT (training);
- :mod:`~snn_asr.fastpaths.native`: builds its compiled time loops, ``csrc/`` (numba is the fallback);
- :mod:`~snn_asr.fastpaths.event_driven`: event-driven streaming inference at batch 1.

None of them is chosen here: :mod:`snn_asr.dispatch` does that.
"""
