"""What a model folder may run: its ``hyperparams.yaml`` is code, so only known modules are allowed.

hyperpyyaml's ``!new:``, ``!name:``, ``!apply:`` and ``!module:`` tags import and call whatever
they name, so loading a stranger's model folder could run anything. :func:`check_model_yaml`
allows the modules an exported folder needs (:data:`ALLOWED_MODULES`) and refuses any other, and
every ``!include:`` and ``!!python/...`` tag, in one line. The checkpoints are loaded by torch with
``weights_only=True`` (torch's default since 2.6, which SpeechBrain's loaders follow): a pickle
that would run code is refused there.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ALLOWED_MODULES", "UntrustedModelError", "check_model_yaml"]

ALLOWED_MODULES = ("speechbrain", "snn_asr", "torch", "sentencepiece")
_TAG = re.compile(r"!(new|name|apply|module|include):([^\s\[\]{},]+)|!!python/\S+")


class UntrustedModelError(ValueError):
    """A model folder whose YAML would import or run something outside :data:`ALLOWED_MODULES`."""


def check_model_yaml(path: str | Path) -> None:
    """Raises :class:`UntrustedModelError` (one line) if ``path`` names code outside the allowed modules.

    Example
    -------
    >>> import tempfile
    >>> yaml = Path(tempfile.mkdtemp()) / "hyperparams.yaml"
    >>> _ = yaml.write_text("enc: !new:snn_asr.SpikingRNN\\nrun: !apply:os.system [ls]\\n")
    >>> check_model_yaml(yaml)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    snn_asr.inference.trust.UntrustedModelError: ... line 2 runs 'os.system' (!apply:), outside ...
    """
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        for match in _TAG.finditer(line.split("#", 1)[0]):
            kind, target = match.group(1), match.group(2)
            allowed = kind not in (None, "include") and target.split(".")[0] in ALLOWED_MODULES
            if not allowed:
                what = f"'{target}' (!{kind}:)" if kind else f"'{match.group(0)}'"
                raise UntrustedModelError(
                    f"{str(path)!r} line {number} runs {what}, outside the modules a model folder may use "
                    f"({', '.join(ALLOWED_MODULES)}); if you trust its author, pass --trust-model-code "
                    "(SpikingASR.from_hparams(..., trust_code=True))"
                )
