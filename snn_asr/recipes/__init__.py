"""The recipe machinery every ``recipes/<Corpus>/train.py`` shares: the ``Brain``
(:mod:`~snn_asr.recipes.brain`), the recipe command line and its errors
(:mod:`~snn_asr.recipes.cli`), language models (:mod:`~snn_asr.recipes.ngram`,
:mod:`~snn_asr.recipes.rnnlm`) and plots (:mod:`~snn_asr.recipes.plots`)."""
