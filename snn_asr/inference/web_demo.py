"""``snn-asr demo MODEL_DIR``: a Gradio web page to record or upload audio and see what the model does.

It shows the transcript (the model folder's own decoding, as ``snn-asr transcribe``), its words
with their CTC times, a spike raster of the encoder's layers on that audio, the spike rate of
each layer and the multiplications per frame against a same-size GRU (:func:`snn_asr.ops.count_ops`).
It listens on 127.0.0.1 unless told otherwise. Gradio is an optional extra:
``pip install "snn-asr[demo]"``. The same function serves the page and its API
(``gradio_client``: ``Client(url).predict(handle_file("a.wav"), api_name="/transcribe")``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from snn_asr.dataio import DataError, load_audio
from snn_asr.inference.asr import SpikingASR
from snn_asr.ops import spike_trains
from snn_asr.recipes.plots import spike_raster

__all__ = ["analyse", "build_demo", "serve"]


def analyse(asr: SpikingASR, path: str | os.PathLike) -> tuple[str, list[list], str | None, str]:
    """What the page shows for one audio file.

    Returns
    -------
    tuple
        The transcript; ``[word, start, end]`` rows (seconds); the spike raster's PNG path (``None``
        for a non-spiking encoder); a Markdown summary of spike rates and multiplications.
    """
    signal = load_audio(path, asr.sample_rate)
    transcript = asr.transcribe_signal(signal, report=True)
    words = [[w.text, round(w.start, 2), round(w.end, 2)] for w in transcript.words]
    ops = transcript.ops
    rates = ops.spike_rates()
    lines = [
        f"**{transcript.duration:.2f} s** of audio decoded in {transcript.seconds:.2f} s "
        f"(real-time factor {transcript.rtf:.3f}).",
        "",
        f"**{ops.mults_per_frame:,.0f} multiplications per frame**, "
        f"{ops.ratio_to_gru:.3f} × a same-size GRU's (event-driven: only spikes cost products).",
    ]
    raster = None
    if rates:
        lines += ["", "| layer | spike rate |", "|---|---|"]
        lines += [f"| {name} | {rate:.3f} |" for name, rate in rates.items()]
        feats = next(asr.features(signal))
        trains = spike_trains(asr.parts.enc, feats)
        raster = str(
            spike_raster(trains, Path(tempfile.mkdtemp(prefix="snn-asr-demo-")) / "spike_raster.png")
        )
    return transcript.text, words, raster, "\n".join(lines)


def build_demo(asr: SpikingASR, title: str = "snn-asr"):
    """The ``gradio.Blocks`` page for ``asr`` (Gradio is imported here: an optional extra)."""
    try:
        import gradio as gr
    except ImportError:
        raise DataError(
            'the web demo needs Gradio: pip install "snn-asr[demo]" (or pip install gradio)'
        ) from None

    def run(path: str | None):
        if not path:
            raise gr.Error("Record or upload some audio first.")
        try:
            return analyse(asr, path)
        except DataError as err:
            raise gr.Error(str(err)) from None

    with gr.Blocks(title=title) as page:
        gr.Markdown(f"# {title}\nRecord or upload speech; the spiking encoder's transcript, spikes and cost.")
        with gr.Row():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="audio")
            with gr.Column():
                text = gr.Textbox(label="transcript")
                words = gr.Dataframe(headers=["word", "start (s)", "end (s)"], label="words (CTC times)")
        button = gr.Button("Transcribe", variant="primary")
        with gr.Row():
            raster = gr.Image(type="filepath", label="spike raster")
            stats = gr.Markdown()
        button.click(run, inputs=audio, outputs=[text, words, raster, stats], api_name="transcribe")
    return page


def serve(
    model_dir: str, host: str = "127.0.0.1", port: int = 7860, block: bool = True, trust_code: bool = False
):
    """Loads ``model_dir`` and serves its page at ``http://host:port`` (returns the page if not ``block``)."""
    asr = SpikingASR.from_hparams(source=model_dir, local_only=True, trust_code=trust_code)
    beam, lm = asr.folder_decoding()
    asr.set_decoder(beam, lm, rnnlm=asr.folder_rnnlm() if beam > 0 else None)
    page = build_demo(asr, title=f"snn-asr: {Path(model_dir).name}")
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True)
    return page
