#!/usr/bin/env python3
"""Exports a model folder to ONNX: normalisation, spiking encoder and CTC head in ``OUT_DIR/model.onnx``.

The graph has a dynamic time axis and the layer state as an explicit input and output, so it
serves whole files and streaming chunks (:mod:`snn_asr.inference.onnx_export`). ``OUT_DIR``
loads with ``SpikingASR.from_hparams(source=OUT_DIR)`` and ``snn-asr transcribe --backend
onnxruntime OUT_DIR FILES...``. ``--int8 DIR`` also writes a copy with onnxruntime's dynamic int8
quantization of the weights. Needs ``pip install 'snn-asr[onnx]'``.

Run::

    python tools/export_onnx.py pretrained/snn-an4 exported/snn-an4-onnx --int8 exported/snn-an4-int8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snn_asr.dataio import DataError  # noqa: E402
from snn_asr.inference.trust import UntrustedModelError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a model folder (tools/export_model.py wrote it)")
    parser.add_argument("out_dir", type=Path, help="the ONNX folder to write")
    parser.add_argument("--int8", type=Path, metavar="DIR", help="also an int8-quantized copy in DIR")
    args = parser.parse_args(argv)
    try:
        from snn_asr.inference.onnx_export import export_onnx, quantize_int8
        from snn_asr.inference.onnx_runtime import onnxruntime_or_fail

        onnxruntime_or_fail()
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter's registry notes
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's progress lines and axis-naming notes
            path = export_onnx(args.model_dir, args.out_dir)
            int8 = quantize_int8(args.out_dir, args.int8) if args.int8 else None
    except (DataError, UntrustedModelError, ValueError, ImportError, FileNotFoundError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if int8:
        print(f"wrote {int8} ({int8.stat().st_size / 2**20:.1f} MiB, int8 weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
