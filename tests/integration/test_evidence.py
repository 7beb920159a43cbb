"""Evidence packages (`audit evidence`, `audit check-evidence`) on a real bucket (moto
server) and ledger, and their page in headless Chromium over the DevTools protocol:
an intact package verifies in the browser and from the files; every tampering is named
at its step by both; the page makes no network request; the hand-over is logged first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tenios_io.custody import signing
from tenios_io.custody.checkpoints import open_checkpoint
from tenios_io.custody.evidence import check_package
from tenios_io.custody.layout import log_prefix
from tenios_io.ledger.schema import upgrade
from tenios_io.testing.browser import Browser
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.witness import WitnessKey, WitnessProcess
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]
REASON = "client request under MiFID II Art. 76(8), ticket 4711"


@dataclass
class Exporting:
    world: AuditWorld
    signer: signing.Signer
    ids: list[str]
    key_file: Path


@pytest.fixture
def exporting(
    sqlite_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Exporting]:
    upgrade(sqlite_url)
    world = make_world(sqlite_url, s3_client, locked_bucket)
    key_file = tmp_path / "custody.key"
    signer = signing.generate("archive.test")
    signing.write_signer(key_file, signer)
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "365",
        "TENIOS_CUSTODY_KEY_FILE": str(key_file),
    }.items():
        monkeypatch.setenv(name, value)
    ids = world.archive(2)
    yield Exporting(world, signer, ids, key_file)
    world.ledger.engine.dispose()


def export(exporting: Exporting, cli: Cli, out: Path, *ids: str) -> CliResult:
    made = cli(
        "audit", "evidence", *(ids or exporting.ids[:1]), "--reason", REASON, "--output", str(out)
    )
    assert made.exit_code == 0, made.output
    return made


# -- the package, from its files ------------------------------------------------------------


def test_a_package_holds_the_recording_its_proofs_and_its_own_export(
    exporting: Exporting, cli: Cli, tmp_path: Path
) -> None:
    rec = exporting.world.get(exporting.ids[0])
    before = len(exporting.world.ledger.events(rec.recording_uuid))
    made = export(exporting, cli, tmp_path / "out")
    folder = tmp_path / "out" / rec.recording_uuid
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["README.txt", "evidence.json", "proofs", "verify.html", f"{rec.recording_uuid}.wav"]
    )
    assert (folder / f"{rec.recording_uuid}.wav").read_bytes() == (
        exporting.world.source.payloads[rec.recording_uuid]
    )
    document = json.loads((folder / "evidence.json").read_text())
    # S3's own word about the logged version, not the ledger's copy.
    assert document["s3"]["version_id"] == rec.s3_version_id
    assert document["s3"]["object_lock_mode"] == "GOVERNANCE"
    assert document["s3"]["retain_until"] is not None and document["s3"]["exists"] is True
    # The export was logged before the bytes left, and is proved in the package itself.
    events = exporting.world.ledger.events(rec.recording_uuid)
    assert len(events) == before + 1 and events[-1]["event"] == "exported"
    details = json.loads(events[-1]["details"])
    assert details["reason"] == REASON and details["sha256"] == rec.sha256
    assert details["earlier_events"] == [int(e["seq"]) - 1 for e in events[:-1]]
    assert events[-1]["actor"].startswith("cli:audit-evidence:")
    assert document["exported"]["seq"] == events[-1]["seq"]
    assert [e["leaf_index"] for e in document["events"]] == [int(e["seq"]) - 1 for e in events]
    latest = exporting.world.s3.get_object(
        Bucket=exporting.world.bucket, Key=log_prefix("recordings") + "checkpoint"
    )["Body"].read()
    assert document["log"]["checkpoint"].encode() == latest  # the newest, freshly signed
    size = open_checkpoint(latest, exporting.signer.verifier).size
    assert size >= int(events[-1]["seq"])
    for event in document["events"]:
        proof = (folder / "proofs" / f"{event['leaf_index']}.tlog-proof").read_text()
        assert proof.startswith("c2sp.org/tlog-proof@v1\nextra ")
        assert proof.endswith(document["log"]["checkpoint"])
    # The files alone verify, with the key pinned; nothing secret travels.
    result = check_package(folder, log_key=exporting.signer.verifier)
    assert result.ok, {k: v.problems for k, v in result.steps.items()}
    secret = exporting.key_file.read_text().strip().split("+", 4)[4]
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".wav":
            assert secret not in path.read_text()
    assert secret not in made.output
    checked = cli("audit", "check-evidence", str(folder), "--key", str(exporting.signer.verifier))
    assert checked.exit_code == 0, checked.output
    assert f"{rec.recording_uuid}: verified" in checked.stdout
    assert "GOVERNANCE" in checked.stdout or "governance" in checked.stdout


def test_a_zip_and_a_folder_of_packages_check_as_one(
    exporting: Exporting, cli: Cli, tmp_path: Path
) -> None:
    out, bundle = tmp_path / "out", tmp_path / "evidence.zip"
    made = cli(
        "audit", "evidence", *exporting.ids, "--reason", REASON, "--output", str(out),
        "--zip", str(bundle),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert len(zipfile.ZipFile(bundle).namelist()) >= 2 * 5
    whole = cli("audit", "check-evidence", str(out))
    assert whole.exit_code == 0 and "2 package(s) verified" in whole.stdout, whole.output
    zipped = cli("audit", "check-evidence", str(bundle))
    assert zipped.exit_code == 0 and "2 package(s) verified" in zipped.stdout, zipped.output


# -- tampering: the file check and the page name the same step -------------------------------


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def tamper_recording(folder: Path, document: dict[str, Any]) -> None:
    path = folder / document["recording_file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def tamper_event(folder: Path, document: dict[str, Any]) -> None:
    event = document["events"][0]
    event["entry"] = event["entry"].replace('"actor":"', '"actor":"X', 1)


def tamper_proof(folder: Path, document: dict[str, Any]) -> None:
    index = document["events"][0]["leaf_index"]
    path = folder / "proofs" / f"{index}.tlog-proof"
    lines = path.read_text().split("\n")
    lines[3] = _flip(lines[3], 5)  # the first hash of the inclusion proof
    path.write_text("\n".join(lines))


def tamper_checkpoint(folder: Path, document: dict[str, Any]) -> None:
    note = document["log"]["checkpoint"]
    origin, size, rest = note.split("\n", 2)
    document["log"]["checkpoint"] = f"{origin}\n{int(size) + 1}\n{rest}"


def drop_event(folder: Path, document: dict[str, Any]) -> None:
    del document["events"][1]


TAMPERINGS = {
    "recording": tamper_recording,
    "event": tamper_event,
    "inclusion": tamper_proof,
    "checkpoint": tamper_checkpoint,
    "drop-event": drop_event,
}


def _apply(folder: Path, how: Callable[[Path, dict[str, Any]], None]) -> None:
    document = json.loads((folder / "evidence.json").read_text())
    how(folder, document)
    (folder / "evidence.json").write_text(json.dumps(document, indent=2))


def _rebuild_page(folder: Path) -> None:
    """The page carries what it checks: rewrite it from the (tampered) files."""
    from tenios_io.audit.evidence_page import write_page

    document = json.loads((folder / "evidence.json").read_text())
    proofs = {p.stem: p.read_text() for p in (folder / "proofs").glob("*.tlog-proof")}
    recording = folder / document["recording_file"] if document["recording_file"] else None
    with (folder / "verify.html").open("w", encoding="utf-8") as page:
        write_page(page, document, proofs, recording)


@pytest.fixture
def package(exporting: Exporting, cli: Cli, tmp_path: Path) -> Path:
    export(exporting, cli, tmp_path / "out")
    return tmp_path / "out" / exporting.ids[0]


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_each_tampering_is_named_by_the_check_and_the_page(
    name: str, package: Path, cli: Cli, browser: Browser, tmp_path: Path
) -> None:
    step = "event" if name == "drop-event" else name
    copy = tmp_path / name / package.name
    shutil.copytree(package, copy)
    _apply(copy, TAMPERINGS[name])
    _rebuild_page(copy)
    result = check_package(copy)
    assert not result.ok and result.failed_step == step, {
        k: v.problems for k, v in result.steps.items()
    }
    checked = cli("audit", "check-evidence", str(copy))
    assert checked.exit_code == 1 and f"FAILED at step {step}" in checked.stdout, checked.output
    browser.open(copy / "verify.html")
    browser.evaluate("window.verification")
    verdict = browser.evaluate("[document.body.dataset.verdict, document.body.dataset.failedStep]")
    assert verdict == ["failed", step], browser.evaluate("document.body.innerText")
    text = browser.evaluate("document.getElementById('verdict').innerText")
    assert "NOT verified" in text


def test_the_intact_page_verifies_offline_and_shows_what_a_reader_needs(
    package: Path, exporting: Exporting, browser: Browser, tmp_path: Path
) -> None:
    browser.open(package / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") == "verified"
    states = browser.evaluate(
        "Array.from(document.querySelectorAll('#steps li'), li => li.dataset.state)"
    )
    assert states == ["ok"] * 5
    text = browser.evaluate("document.body.innerText")
    rec = exporting.world.get(package.name)
    assert rec.recording_uuid in text and rec.sha256 in text and REASON in text
    assert "GOVERNANCE until" in text
    # No request left the page but the page itself (file://); names resolve to nothing.
    assert [u for u in browser.requested_urls() if not u.startswith("file://")] == []
    browser.screenshot(tmp_path / "verified.png")
    assert (tmp_path / "verified.png").stat().st_size > 10_000


def test_a_large_recording_is_checked_once_the_reader_picks_the_file(
    exporting: Exporting,
    cli: Cli,
    browser: Browser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tenios_io.audit.evidence as builder
    import tenios_io.audit.evidence_page as page

    monkeypatch.setattr(page, "EMBED_LIMIT", 1000)  # the samples are larger than this
    monkeypatch.setattr(builder, "EMBED_LIMIT", 1000)
    made = export(exporting, cli, tmp_path / "out")
    assert "asks for the file" in made.stdout
    folder = tmp_path / "out" / exporting.ids[0]
    assert 'id="recording-b64"' not in (folder / "verify.html").read_text()
    browser.open(folder / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") is None
    assert "Drop the recording file" in browser.evaluate(
        "document.getElementById('verdict').innerText"
    )
    wrong = tmp_path / "other.wav"
    wrong.write_bytes(exporting.world.source.payloads[exporting.ids[1]])
    browser.choose_file("#file", wrong)
    browser.evaluate("window.verification")
    assert browser.evaluate(
        "[document.body.dataset.verdict, document.body.dataset.failedStep]"
    ) == [
        "failed",
        "recording",
    ]
    browser.choose_file("#file", folder / f"{exporting.ids[0]}.wav")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") == "verified"


def test_a_cosigned_checkpoint_is_checked_against_its_witnesses(
    package: Path, browser: Browser, tmp_path: Path
) -> None:
    """cosignature/v1 (C2SP tlog-cosignature) written here from the spec's text alone:
    keyhash(4) || big-endian timestamp(8) || Ed25519 over "cosignature/v1\\ntime T\\n" + body."""
    witness = Ed25519PrivateKey.generate()
    public = witness.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    name = "audit.example"
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    encoded = base64.b64encode(bytes([4]) + public).decode()
    witness_key = f"{name}+{key_id.hex()}+{encoded}"
    document = json.loads((package / "evidence.json").read_text())
    note = document["log"]["checkpoint"]
    body = note[: note.rindex("\n\n") + 1]
    stamp = 1_765_000_000
    signature = witness.sign(b"cosignature/v1\ntime %d\n" % stamp + body.encode())
    line = (
        f"\u2014 {name} " + base64.b64encode(key_id + stamp.to_bytes(8, "big") + signature).decode()
    )
    cosigned = note + line + "\n"
    for proof in (package / "proofs").glob("*.tlog-proof"):
        proof.write_text(proof.read_text().replace(note, cosigned))
    document["log"].update(checkpoint=cosigned, witnesses=[witness_key], quorum=1)
    (package / "evidence.json").write_text(json.dumps(document))
    _rebuild_page(package)
    good = check_package(package)
    assert good.ok and good.witnessed == {name: stamp}
    browser.open(package / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") == "verified"
    assert name in browser.evaluate("document.getElementById('witnesses').innerText")

    forged = tmp_path / "forged" / package.name
    shutil.copytree(package, forged)
    bad_line = line[:-6] + ("AAAA" if line[-6:-2] != "AAAA" else "BBBB") + line[-2:]
    for path in (forged / "proofs").glob("*.tlog-proof"):
        path.write_text(path.read_text().replace(line, bad_line))
    document["log"]["checkpoint"] = cosigned.replace(line, bad_line)
    (forged / "evidence.json").write_text(json.dumps(document))
    _rebuild_page(forged)
    assert check_package(forged).failed_step == "cosignature"
    browser.open(forged / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.failedStep") == "cosignature"


# -- refused exports: one line, nothing logged, nothing written -------------------------------


def test_refused_exports_log_nothing_and_write_nothing(
    exporting: Exporting, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    events = exporting.world.ledger.event_count()
    unknown = str(uuid.uuid4())
    refused = cli(
        "audit", "evidence", exporting.ids[0], unknown, "--reason", REASON, "--output", str(out)
    )
    assert refused.exit_code == 1 and f"recording {unknown} is not in the ledger" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert exporting.world.ledger.event_count() == events and not out.exists()
    no_reason = cli("audit", "evidence", exporting.ids[0], "--reason", "  ", "--output", str(out))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr

    export(exporting, cli, out)
    again = cli("audit", "evidence", exporting.ids[0], "--reason", REASON, "--output", str(out))
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr
    forced = cli(
        "audit", "evidence", exporting.ids[0], "--reason", REASON, "--output", str(out), "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert [p.name for p in out.iterdir()] == [exporting.ids[0]]  # no temporary folder left
    # Two exports, two events: every hand-over is on the record.
    exported = [
        e for e in exporting.world.ledger.events(exporting.ids[0]) if e["event"] == "exported"
    ]
    assert len(exported) == 2
    document = json.loads((out / exporting.ids[0] / "evidence.json").read_text())
    assert sum('"event":"exported"' in e["entry"] for e in document["events"]) == 2


# -- every hand-over of an archived recording is on the record --------------------------------


def test_api_retrieve_of_an_archived_recording_is_logged_before_the_bytes_leave(
    exporting: Exporting, cli: Cli, api_env: RunningSimulator, tmp_path: Path
) -> None:
    archived = exporting.ids[0]
    api_env.sim.add_recording(archived, seconds=1)
    before = exporting.world.ledger.event_count()
    fetched = cli(
        "api", "retrieve", archived, "--output", str(tmp_path / "copy.wav"), "--reason", REASON
    )
    assert fetched.exit_code == 0, fetched.output
    assert "logged as custody event" in fetched.stderr
    event = exporting.world.ledger.events(archived)[-1]
    assert event["event"] == "exported" and event["actor"].startswith("cli:api-retrieve:")
    details = json.loads(event["details"])
    assert details["reason"] == REASON and details["handed_out"] == "api retrieve (from TENIOS)"
    # Logged first: a retrieve that then fails (TENIOS does not know the id) is still
    # on the record as an attempted hand-over, while one the ledger never archived is not.
    not_at_tenios = exporting.ids[1]
    failed = cli("api", "retrieve", not_at_tenios, "--output", str(tmp_path / "x.wav"))
    assert failed.exit_code == 1 and not (tmp_path / "x.wav").exists()
    assert exporting.world.ledger.events(not_at_tenios)[-1]["event"] == "exported"
    unknown = api_env.sim.add_recording(seconds=1)
    assert cli("api", "retrieve", unknown, "--output", str(tmp_path / "u.wav")).exit_code == 0
    assert exporting.world.ledger.event_count() == before + 2


def test_the_report_lists_accesses_per_recording_and_per_actor(
    exporting: Exporting, cli: Cli, tmp_path: Path
) -> None:
    from tenios_io.audit import Period, build_report

    export(exporting, cli, tmp_path / "out", *exporting.ids)
    report = build_report(exporting.world.ledger, tmp_path / "report", period=Period())
    assert sorted(e.recording_uuid or "" for e in report.accesses) == sorted(exporting.ids)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["accesses_in_period"] == 2
    (actor,) = summary["accesses_by_actor"]
    assert actor.startswith("cli:audit-evidence:") and summary["accesses_by_actor"][actor] == 2
    html = report.files["html"].read_text()
    assert "Access to recordings" in html and REASON in html


def test_a_purged_recording_s_package_proves_the_purge_and_holds_no_bytes(
    exporting: Exporting, cli: Cli, browser: Browser, tmp_path: Path
) -> None:
    from tenios_io.audit import PurgeAction, purge_expired
    from tests.integration.test_audit_support import recent

    (old,) = exporting.world.archive(1, recorded_at=recent(400))  # retention long over
    purged = purge_expired(
        exporting.world.ledger, exporting.world.store, execute=True, reason="policy R-7"
    )
    assert [r.recording_uuid for r in purged.of(PurgeAction.PURGED)] == [old]
    made = export(exporting, cli, tmp_path / "out", old)
    assert "purged" in made.stdout
    folder = tmp_path / "out" / old
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.txt", "evidence.json", "proofs", "verify.html",
    ]  # fmt: skip
    document = json.loads((folder / "evidence.json").read_text())
    assert document["purged"] is True and document["s3"]["exists"] is False
    assert any('"event":"purged"' in e["entry"] for e in document["events"])
    assert check_package(folder).ok
    browser.open(folder / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") == "verified"
    assert "purged" in browser.evaluate("document.getElementById('steps').innerText")


# -- witnessed: the package carries the witnesses' cosignatures and keys ----------------------


def test_a_package_is_cosigned_by_a_running_witness_and_waits_for_one_that_is_down(
    exporting: Exporting,
    cli: Cli,
    browser: Browser,
    tmp_path: Path,
    witness_key: WitnessKey,
    start_witness: Callable[..., WitnessProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    witness = start_witness(tmp_path / "witness-state", str(exporting.signer.verifier))
    monkeypatch.setenv("TENIOS_CUSTODY_WITNESSES", f"{witness_key.verifier}@{witness.url}")
    export(exporting, cli, tmp_path / "out")
    folder = tmp_path / "out" / exporting.ids[0]
    document = json.loads((folder / "evidence.json").read_text())
    assert document["log"]["witnesses"] == [str(witness_key.verifier)]
    assert document["log"]["quorum"] == 1
    result = check_package(folder, log_key=exporting.signer.verifier)
    assert result.ok and set(result.witnessed) == {witness_key.verifier.name}
    browser.open(folder / "verify.html")
    browser.evaluate("window.verification")
    assert browser.evaluate("document.body.dataset.verdict") == "verified"
    assert witness_key.verifier.name in browser.evaluate(
        "document.getElementById('witnesses').innerText"
    )

    # The witness is down: the export is logged, but no package claims a witnessed log.
    witness.stop()
    events = exporting.world.ledger.event_count()
    waiting = cli(
        "audit", "evidence", exporting.ids[1], "--reason", REASON, "--output", str(tmp_path / "o2")
    )
    assert waiting.exit_code == 1 and "not yet witnessed" in waiting.stderr, waiting.output
    assert exporting.world.ledger.event_count() > events  # the export is on the record
    assert not (tmp_path / "o2" / exporting.ids[1]).exists()


def test_no_custody_key_is_a_settings_error_before_anything_is_logged(
    exporting: Exporting, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENIOS_CUSTODY_KEY_FILE")
    events = exporting.world.ledger.event_count()
    refused = cli(
        "audit", "evidence", exporting.ids[0], "--reason", REASON, "--output", str(tmp_path / "o")
    )
    assert refused.exit_code == 2 and "audit keygen" in refused.stderr, refused.output
    assert exporting.world.ledger.event_count() == events and not (tmp_path / "o").exists()
