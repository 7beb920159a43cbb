"use strict";
(() => {
  const STEPS = ["checkpoint", "cosignature", "event", "inclusion", "recording"];
  const MEANING = {
    checkpoint: "The log's signed statement (the checkpoint) is not signed by the archive's key shown below: the package was altered, or made by someone else.",
    cosignature: "The independent witnesses did not confirm this state of the log: the archive's operator alone vouches for it.",
    event: "A custody event in the package was altered or removed, or does not belong to this recording.",
    inclusion: "An event cannot be shown to be part of the signed log: it was altered, or is not in the log.",
    recording: "The recording file is not the one that was archived: its content differs.",
  };
  const TITLE = {
    checkpoint: "Signed log", cosignature: "Witnesses", event: "Custody events",
    inclusion: "Events in the log", recording: "Recording",
  };
  const enc = new TextEncoder();
  const $ = (id) => document.getElementById(id);
  const results = {};
  for (const s of STEPS) results[s] = { ok: true, done: false, detail: "", problems: [] };
  const fail = (step, why) => { results[step].ok = false; results[step].problems.push(why); };

  function b64(text) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error("not base64");
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const hex = (bytes) => Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  async function ed25519(pub, sig, msg) {
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, sig, msg);
  }
  // A verifier key NAME+KEYID+BASE64(type || key) of C2SP signed-note (0x01: Ed25519,
  // 0x04: cosignature/v1).
  async function verifierKey(text, type) {
    // The base64 part may itself hold "+": split at the first two only.
    const whole = String(text).trim();
    const first = whole.indexOf("+");
    const second = whole.indexOf("+", first + 1);
    if (first < 1 || second < 0) throw new Error("a key is NAME+KEYID+BASE64");
    const [name, id, encoded] = [
      whole.slice(0, first), whole.slice(first + 1, second), whole.slice(second + 1),
    ];
    const raw = b64(encoded);
    if (raw.length !== 33 || raw[0] !== type) throw new Error("key " + name + " is not of the expected type");
    const pub = raw.slice(1);
    const expected = (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, type), pub))).slice(0, 4);
    if (hex(expected) !== id.toLowerCase()) throw new Error("the key id of " + name + " does not match its key");
    return { name, id: expected, pub };
  }
  function splitNote(text) {
    const cut = text.lastIndexOf("\n\n");
    if (cut < 0 || !text.endsWith("\n")) throw new Error("the checkpoint has no signature");
    const body = text.slice(0, cut + 1);
    const sigs = text.slice(cut + 2, -1).split("\n").map((line) => {
      if (!line.startsWith("\u2014 ")) throw new Error("malformed signature line");
      const rest = line.slice(2);
      const space = rest.indexOf(" ");
      return { name: rest.slice(0, space), raw: b64(rest.slice(space + 1)) };
    });
    return { body, sigs };
  }
  function parseProof(text) {
    const cut = text.indexOf("\n\n");
    if (cut < 0) throw new Error("a proof has no checkpoint");
    const lines = text.slice(0, cut).split("\n");
    if (lines.shift() !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof");
    let extra = null;
    if (lines.length && lines[0].startsWith("extra ")) extra = b64(lines.shift().slice(6));
    const indexLine = lines.shift() || "";
    if (!/^index (0|[1-9][0-9]*)$/.test(indexLine)) throw new Error("a proof has no index");
    const hashes = lines.map(b64);
    if (hashes.some((h) => h.length !== 32)) throw new Error("a proof hash is not 32 bytes");
    return { index: Number(indexLine.slice(6)), extra, hashes, checkpoint: text.slice(cut + 2) };
  }
  // RFC 9162, 2.1.3.2: from a leaf hash through its inclusion proof to the root.
  async function included(leaf, index, size, proof, root) {
    if (index >= size) return false;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && eq(r, root);
  }

  const data = JSON.parse($("evidence-data").textContent);
  const doc = data.document;
  const log = doc.log || {};
  const proven = [];
  let archived = null;
  let checkpoint = null;

  async function checkCheckpoint() {
    const step = "checkpoint";
    try {
      const key = await verifierKey(log.key, 0x01);
      const note = splitNote(String(log.checkpoint));
      const sig = note.sigs.find((s) => s.name === key.name && eq(s.raw.slice(0, 4), key.id));
      if (!sig) throw new Error("not signed by " + key.name);
      if (sig.raw.length !== 68 || !(await ed25519(key.pub, sig.raw.slice(4), enc.encode(note.body))))
        throw new Error("the signature of " + key.name + " does not verify");
      const lines = note.body.split("\n");
      if (lines[0] !== log.origin) throw new Error("the checkpoint's origin is not " + log.origin);
      if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("malformed tree size");
      checkpoint = { body: note.body, sigs: note.sigs, size: Number(lines[1]), root: b64(lines[2]) };
      results[step].detail = "signed by " + key.name + ": " + checkpoint.size + " events";
    } catch (e) { fail(step, e.message); }
  }
  async function checkCosignatures() {
    const step = "cosignature";
    const keys = log.witnesses || [];
    if (!keys.length) { results[step].detail = "no witnesses: the log's word alone"; return; }
    if (!checkpoint) { fail(step, "no verified checkpoint"); return; }
    const seen = [];
    try {
      for (const text of keys) {
        const w = await verifierKey(text, 0x04);
        for (const s of checkpoint.sigs) {
          if (s.name !== w.name || !eq(s.raw.slice(0, 4), w.id)) continue;
          if (s.raw.length !== 76) throw new Error("the cosignature of " + w.name + " is malformed");
          const stamp = s.raw.slice(4, 12);
          let time = 0;
          for (const x of stamp) time = time * 256 + x;
          const msg = concat(enc.encode("cosignature/v1\ntime " + time + "\n"), enc.encode(checkpoint.body));
          if (!(await ed25519(w.pub, s.raw.slice(12), msg)))
            throw new Error("the cosignature of " + w.name + " does not verify");
          seen.push(w.name + " (" + new Date(time * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC)");
        }
      }
    } catch (e) { fail(step, e.message); return; }
    const need = Number(log.quorum ?? keys.length);
    if (seen.length < need) fail(step, seen.length + " of " + keys.length + " witnesses cosigned, " + need + " needed");
    else results[step].detail = "cosigned by " + seen.join(", ");
    $("witnesses").textContent = seen.length ? seen.join("; ") : "none";
  }
  async function checkEvents() {
    const step = "event";
    const seen = new Set();
    let exportList = null;
    for (const item of doc.events || []) {
      try {
        const index = Number(item.leaf_index);
        const text = data.proofs[String(index)];
        if (text === undefined) throw new Error("event " + (index + 1) + " has no proof");
        const proof = parseProof(text);
        const entry = enc.encode(item.entry);
        if (proof.index !== index || !proof.extra || !eq(proof.extra, entry))
          throw new Error("event " + (index + 1) + " is not the entry its proof carries");
        if (proof.checkpoint !== log.checkpoint) throw new Error("the proof of event " + (index + 1) + " is for another checkpoint");
        const event = JSON.parse(item.entry);
        if (event.recording_uuid !== doc.recording_uuid || event.seq !== index + 1)
          throw new Error("leaf " + index + " is not an event of this recording");
        if (seen.has(index)) throw new Error("event " + (index + 1) + " is listed twice");
        seen.add(index);
        proven.push({ index, entry, proof, event });
        if (event.event === "archived") archived = event.details;
        if (event.event === "exported" && event.seq === (doc.exported || {}).seq) exportList = event.details.earlier_events || [];
      } catch (e) { fail(step, e.message); }
    }
    if (!proven.length) fail(step, "the package holds no event");
    if (doc.exported && exportList === null) fail(step, "the package's own export event is not in it");
    const missing = (exportList || []).filter((i) => !seen.has(i));
    if (missing.length) fail(step, "events logged before the export are missing: " + missing.map((i) => i + 1).join(", "));
    if (results[step].ok) results[step].detail = proven.length + " events of this recording";
  }
  async function checkInclusion() {
    const step = "inclusion";
    if (!checkpoint) { fail(step, "no verified checkpoint to check against"); return; }
    for (const p of proven) {
      if (!(await included(await leafHash(p.entry), p.index, checkpoint.size, p.proof.hashes, checkpoint.root)))
        fail(step, "event " + (p.index + 1) + " is not in the signed log");
    }
    if (results[step].ok) results[step].detail = proven.length + " events in the log of " + checkpoint.size;
  }
  async function checkRecording(bytes) {
    const step = "recording";
    results[step] = { ok: true, done: false, detail: "", problems: [] };
    if (!archived) { fail(step, "no proven archived event"); return; }
    const digest = hex(await sha256(bytes));
    if (digest !== archived.sha256 || bytes.length !== archived.size_bytes)
      fail(step, "the file hashes to " + digest + " (" + bytes.length + " bytes); archived: " + archived.sha256 + " (" + archived.size_bytes + " bytes)");
    else results[step].detail = "SHA-256 " + digest + ", as archived";
  }

  function show() {
    const list = $("steps");
    list.replaceChildren();
    for (const s of STEPS) {
      const r = results[s];
      const li = document.createElement("li");
      li.dataset.step = s;
      li.dataset.state = !r.done ? "pending" : r.ok ? "ok" : "failed";
      const b = document.createElement("b");
      b.textContent = TITLE[s];
      li.append(b);
      const d = document.createElement("span");
      d.className = "detail";
      d.textContent = r.done ? (r.ok ? r.detail : MEANING[s]) : "waiting";
      li.append(d);
      for (const why of r.problems) {
        const w = document.createElement("span");
        w.className = "why";
        w.textContent = why;
        li.append(w);
      }
      list.append(li);
    }
    const failed = STEPS.find((s) => results[s].done && !results[s].ok);
    const allDone = STEPS.every((s) => results[s].done);
    const verdict = $("verdict");
    if (failed) {
      verdict.className = "bad";
      verdict.querySelector("strong").textContent = "NOT verified: " + TITLE[failed].toLowerCase() + " failed.";
      verdict.querySelector("p").textContent = MEANING[failed];
      document.body.dataset.verdict = "failed";
      document.body.dataset.failedStep = failed;
    } else if (allDone) {
      verdict.className = "ok";
      verdict.querySelector("strong").textContent = "Verified.";
      verdict.querySelector("p").textContent =
        "This is the recording that was archived, and every custody event shown is in the archive's signed log" +
        ((log.witnesses || []).length ? ", confirmed by independent witnesses." : ".");
      document.body.dataset.verdict = "verified";
      delete document.body.dataset.failedStep;
    } else {
      verdict.className = "pending";
      verdict.querySelector("strong").textContent = "Drop the recording file here to finish the check.";
      verdict.querySelector("p").textContent = "Everything else has been checked.";
    }
  }
  function describe() {
    const row = doc.ledger || {};
    const s3 = doc.s3 || {};
    const put = (id, value) => { $(id).textContent = value === null || value === undefined || value === "" ? "—" : String(value); };
    put("recording-uuid", doc.recording_uuid);
    put("call-uuid", row.call_uuid);
    put("recorded-at", row.recorded_at);
    put("duration", row.duration_seconds == null ? null : Math.round(row.duration_seconds) + " s");
    put("size", row.size_bytes == null ? null : row.size_bytes.toLocaleString("en") + " bytes");
    put("sha256", row.sha256);
    const logged = proven.find((p) => p.event.event === "archived");
    put("archived-at", logged ? logged.event.occurred_at : row.archived_at);
    put("where", s3.key ? "s3://" + s3.bucket + "/" + s3.key + " (version " + s3.version_id + ")" : null);
    put("retention", s3.object_lock_mode ? s3.object_lock_mode + " until " + s3.retain_until : "no Object Lock reported by S3");
    put("legal-hold", s3.legal_hold ? "on" : "off");
    put("exported", (doc.exported || {}).at + " by " + (doc.exported || {}).actor);
    put("reason", (doc.exported || {}).reason);
    put("log-key", log.key);
    put("witness-keys", (log.witnesses || []).join(" ; ") || "none");
    const body = $("events");
    for (const p of proven.slice().sort((a, b) => a.index - b.index)) {
      const tr = document.createElement("tr");
      for (const value of [p.event.seq, p.event.occurred_at, p.event.event, p.event.actor]) {
        const td = document.createElement("td");
        td.textContent = String(value);
        tr.append(td);
      }
      body.append(tr);
    }
    const access = proven.filter((p) => p.event.event === "exported");
    $("accesses").textContent = access.length
      ? access.map((p) => p.event.occurred_at + " — " + p.event.actor + " — " + p.event.details.reason).join("\n")
      : "none";
  }
  async function onFile(file) {
    results.recording.done = false;
    await checkRecording(new Uint8Array(await file.arrayBuffer()));
    results.recording.done = true;
    show();
  }

  // The running check, for whoever waits on it (a test over the DevTools protocol).
  window.verification = (async () => {
    await checkCheckpoint(); results.checkpoint.done = true;
    await checkCosignatures(); results.cosignature.done = true;
    await checkEvents(); results.event.done = true;
    await checkInclusion(); results.inclusion.done = true;
    describe();
    const embedded = $("recording-b64");
    if (doc.recording_file === null) {
      if (!archived) fail("recording", "no proven archived event");
      else results.recording.detail = "purged: the package holds no recording";
      results.recording.done = true;
    } else if (embedded) {
      await checkRecording(b64(embedded.textContent.replace(/\s+/g, "")));
      results.recording.done = true;
    } else {
      const drop = $("drop");
      drop.hidden = false;
      $("file").addEventListener("change", (e) => {
        if (e.target.files[0]) window.verification = onFile(e.target.files[0]);
      });
      drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
      drop.addEventListener("dragleave", () => drop.classList.remove("over"));
      drop.addEventListener("drop", (e) => {
        e.preventDefault(); drop.classList.remove("over");
        if (e.dataTransfer.files[0]) window.verification = onFile(e.dataTransfer.files[0]);
      });
    }
    show();
  })().catch((e) => {
    const verdict = $("verdict");
    verdict.className = "bad";
    verdict.querySelector("strong").textContent = "The check could not run: " + e.message;
    document.body.dataset.verdict = "failed";
    document.body.dataset.failedStep = STEPS.find((s) => !results[s].done) || "recording";
  });
})();
