"""What the reference and every CPU fast path share below the equations: matrix products through
oneDNN (:mod:`~snn_asr.primitives.linear`) and large buffers reused between training steps
(:mod:`~snn_asr.primitives.workspace`).

They sit below :mod:`snn_asr.neurons` so that the reference and the fused recurrence make the
same float operations (the fused forward is bit-identical to the reference), without the
reference importing a fast path.
"""
