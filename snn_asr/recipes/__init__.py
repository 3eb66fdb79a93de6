"""The recipe machinery every ``recipes/<Corpus>/train.py`` shares, one call per step.

- :mod:`~snn_asr.recipes.run`: the flow (:class:`~snn_asr.recipes.run.ASRRecipe`, and
  :func:`~snn_asr.recipes.run.run_lm_recipe` for the RNNLM): command line, manifests, units,
  datasets, training, test, language models;
- :mod:`~snn_asr.recipes.prepare`: what every corpus preparation shares (options, data stamps,
  manifests written once);
- :mod:`~snn_asr.recipes.data`: units (sentencepiece tokens or labels) made once per data, datasets;
- :mod:`~snn_asr.recipes.brain`: the ``Brain`` (:class:`~snn_asr.recipes.brain.ASRBrain`);
- :mod:`~snn_asr.recipes.cli`: the recipe command line and its one-line errors;
- :mod:`~snn_asr.recipes.ngram`, :mod:`~snn_asr.recipes.rnnlm`: language models;
  :mod:`~snn_asr.recipes.plots`: plots.
"""
