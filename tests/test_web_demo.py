"""``snn-asr demo``: the Gradio page served on localhost, driven through ``gradio_client`` (real HTTP)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from corpora import FSDD, REPO

gradio_client = pytest.importorskip(
    "gradio_client", reason="needs the demo extra: pip install 'snn-asr[demo]'"
)

BUNDLED = REPO / "pretrained" / "snn-digits"
CLIP = FSDD / "recordings" / "3_george_0.wav"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    command = [sys.executable, "-m", "snn_asr.inference.cli", "demo", str(BUNDLED), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"snn-asr demo exited: {process.stdout.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("snn-asr demo did not listen within 120 s")
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(10)


def test_the_page_transcribes_as_the_cli_and_shows_spikes_and_cost(server):
    expected = (
        subprocess.run(
            [sys.executable, "-m", "snn_asr.inference.cli", "transcribe", str(BUNDLED), str(CLIP)],
            capture_output=True,
            text=True,
        )
        .stdout.split("\t")[1]
        .strip()
    )
    client = gradio_client.Client(server, verbose=False)
    text, words, raster, stats = client.predict(gradio_client.handle_file(str(CLIP)), api_name="/transcribe")
    assert text == expected and text
    assert [row[0] for row in words["data"]] == text.split()
    assert all(0 <= row[1] <= row[2] for row in words["data"])
    with open(raster, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "multiplications per frame" in stats and "same-size GRU" in stats and "spike rate" in stats


def test_it_listens_only_on_localhost_by_default(server):
    port = int(server.rstrip("/").rsplit(":", 1)[1])
    addresses = set()
    with socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM
    ) as probe:  # no packet sent: routing picks the address
        try:
            probe.connect(("10.255.255.255", 1))
            addresses = {probe.getsockname()[0]} - {"0.0.0.0"}
        except OSError:
            pass
    addresses = {a for a in addresses if not a.startswith("127.")}
    if not addresses:
        pytest.skip("needs a non-loopback address on this machine to check the demo is not listening there")
    for address in addresses:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"the demo answers on {address}"
