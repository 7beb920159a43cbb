"""``verify.html`` and ``README.txt`` of an evidence package.

The page is one self-contained file: its Content-Security-Policy forbids every network
request (``default-src 'none'``; the one inline script and style are allowed by their
hashes), and it carries what it verifies — the package's ``evidence.json``, the proof
files and, up to :data:`~tenios_io.custody.evidence.EMBED_LIMIT`, the recording's bytes —
because a page opened from ``file://`` may not read the files beside it.  Its script
re-runs the steps of :mod:`tenios_io.custody.evidence` with the browser's own WebCrypto
(SHA-256, Ed25519): nothing in it is trusted from the builder but the keys it shows.

When it has finished, ``<body data-verdict="verified">`` or ``<body
data-verdict="failed" data-failed-step="STEP">``; a recording above the embed limit is
checked once the reader drops the file onto the page (or picks it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

from tenios_io.custody.evidence import EMBED_LIMIT, STEPS

_CSS = (files(__package__) / "evidence_page.css").read_text(encoding="utf-8")
_SCRIPT = (files(__package__) / "evidence_page.js").read_text(encoding="utf-8")

_BODY = """<main>
<h1>Evidence package: call recording</h1>
<p class="muted">Checked in this browser, offline, from the files of this package alone.</p>
<div id="verdict" class="pending"><strong>Checking…</strong><p></p></div>
<div id="drop" hidden><p>This recording is too large to travel inside the page. Drop the
recording file (<span class="mono">{recording_file}</span>) here, or pick it:</p>
<input id="file" type="file"></div>
<h2>The recording</h2>
<dl>
<dt>Recording id</dt><dd id="recording-uuid" class="mono"></dd>
<dt>Call id</dt><dd id="call-uuid" class="mono"></dd>
<dt>Recorded at</dt><dd id="recorded-at"></dd>
<dt>Duration</dt><dd id="duration"></dd>
<dt>Size</dt><dd id="size"></dd>
<dt>SHA-256</dt><dd id="sha256" class="mono"></dd>
</dl>
<h2>Archive</h2>
<dl>
<dt>Archived at</dt><dd id="archived-at"></dd>
<dt>Stored as</dt><dd id="where" class="mono"></dd>
<dt>Retained</dt><dd id="retention"></dd>
<dt>Legal hold</dt><dd id="legal-hold"></dd>
<dt>Witnessed by</dt><dd id="witnesses">none</dd>
</dl>
<p class="muted">Retention and legal hold are what S3 reported when the package was made.</p>
<h2>This copy</h2>
<dl>
<dt>Handed out</dt><dd id="exported"></dd>
<dt>Reason</dt><dd id="reason"></dd>
<dt>Access history</dt><dd id="accesses"></dd>
</dl>
<h2>Checks</h2>
<ol id="steps" class="steps"></ol>
<h2>Custody events</h2>
<table><thead><tr><th>#</th><th>When (UTC)</th><th>Event</th><th>By</th></tr></thead>
<tbody id="events"></tbody></table>
<h2>Keys</h2>
<p class="muted">Compare these with the keys you obtained from the archive's operator and its
witnesses by another channel: a package made by someone else carries other keys.</p>
<dl>
<dt>Log key</dt><dd id="log-key" class="mono"></dd>
<dt>Witness keys</dt><dd id="witness-keys" class="mono"></dd>
</dl>
</main>
"""


def _csp_hash(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


def _json_script(value: Any) -> str:
    # JSON inside <script>: "</" and "<!--" could end or confuse the element; escape "<".
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def write_page(
    out: IO[str],
    document: Mapping[str, Any],
    proofs: Mapping[str, str],
    recording: Path | None,
) -> None:
    """Write the page to ``out``; ``recording`` (when at most EMBED_LIMIT bytes) is
    embedded base64, streamed 3 MiB at a time (memory stays bounded)."""
    from html import escape

    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(_SCRIPT)}; style-src {_csp_hash(_CSS)}; "
        "img-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    out.write(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Evidence: recording {escape(str(document['recording_uuid']))}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
    )
    out.write(_BODY.format(recording_file=escape(str(document.get("recording_file") or ""))))
    out.write('<script type="application/json" id="evidence-data">')
    out.write(_json_script({"document": document, "proofs": dict(proofs)}))
    out.write("</script>\n")
    if recording is not None and recording.stat().st_size <= EMBED_LIMIT:
        out.write('<script type="application/octet-stream" id="recording-b64">')
        with recording.open("rb") as handle:
            while chunk := handle.read(3 * 1024 * 1024):  # a multiple of 3: no padding inside
                out.write(base64.b64encode(chunk).decode("ascii"))
        out.write("</script>\n")
    out.write(f"<script>{_SCRIPT}</script>\n</body></html>\n")


def readme_text(document: Mapping[str, Any]) -> str:
    """README.txt: what the package is and how to check it without the page."""
    uuid = document["recording_uuid"]
    log = document.get("log") or {}
    witnesses = log.get("witnesses") or []
    lines = [
        f"Evidence package for call recording {uuid}",
        "",
        "Open verify.html in a current browser (Chromium, Firefox, Safari): it checks",
        "everything below offline and shows the verdict. Without the page:",
        "",
        f"  tenios-archive audit check-evidence {uuid}/ --key '{log.get('key')}'",
        "",
        "exits 0 when every step verifies, 1 naming the step that failed. The steps:",
        "",
    ]
    explain = {
        "checkpoint": "the checkpoint (a C2SP signed note) is signed by the log key",
        "cosignature": "witnesses cosigned it (C2SP tlog-cosignature, cosignature/v1)",
        "event": "each event is the entry its proof carries, of this recording, and none of the "
        "events the export lists (details.earlier_events) is missing",
        "inclusion": "each entry's leaf hash SHA-256(0x00 || entry) leads through its inclusion "
        "proof to the checkpoint's root (RFC 6962)",
        "recording": "the recording file's SHA-256 and size are those its archived event logged",
    }
    lines += [f"  {step:<12} {explain[step]}" for step in STEPS]
    lines += [
        "",
        "Files:",
        "  evidence.json          the recording's ledger row, what S3 reported about the",
        "                         archived object version, the export, the log's keys and",
        "                         checkpoint, and every custody event (its log entry text)",
        f"  {document.get('recording_file') or '(no recording: purged)'!s:<22} "
        "the bytes as archived",
        "  proofs/N.tlog-proof    a C2SP tlog-proof (c2sp.org/tlog-proof) per event N (leaf",
        "                         index); its `extra` line is the entry, base64",
        "",
        f"Log key (Ed25519, C2SP signed-note): {log.get('key')}",
        f"Witness keys (cosignature/v1): {', '.join(witnesses) if witnesses else 'none'}",
        f"Quorum: {log.get('quorum')}",
        "",
        "Compare the keys with ones obtained from the archive's operator and its witnesses",
        "by another channel: the package carries the keys its builder used.",
        "",
    ]
    return "\n".join(lines)
