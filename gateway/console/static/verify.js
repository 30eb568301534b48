// In-browser verification of a kept receipt (WebCrypto): the result body's SHA-256
// against the record, the record's RFC 6962 leaf hash, the inclusion proof up to the
// checkpoint's root, and the checkpoint's Ed25519 signature (signed note) against the
// log's published keys - when this browser's WebCrypto has Ed25519.
const enc = new TextEncoder();

const b64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { joined.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

function lastIndexOf(bytes, needle) {
  outer: for (let i = bytes.length - needle.length; i >= 0; i -= 1) {
    for (let j = 0; j < needle.length; j += 1) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The receipt in a kept file and, for a served body, the exact result bytes. */
export function splitKept(bytes) {
  const doc = JSON.parse(new TextDecoder().decode(bytes));
  if (doc && typeof doc.leaf_hash === "string") return { receipt: doc, result: null };
  if (!doc || !doc.receipt) throw new Error("no receipt in this file");
  const at = lastIndexOf(bytes, enc.encode(',"receipt":{'));
  const result = at < 0 ? null : new Uint8Array([...bytes.subarray(0, at), 0x7d]);
  return { receipt: doc.receipt, result };
}

/** RFC 9162 §2.1.3.2, as gateway/tlog/rfc6962.py root_from_inclusion_proof. */
export async function rootFromInclusion(leaf, index, size, proof) {
  if (index >= size) throw new Error("index out of range");
  let r = leaf;
  let fn = index;
  let sn = size - 1;
  for (const p of proof) {
    if (sn === 0) throw new Error("proof too long");
    if ((fn & 1) || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      while (fn && !(fn & 1)) { fn >>= 1; sn >>= 1; }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn !== 0) throw new Error("proof too short");
  return r;
}

function parseCheckpoint(note) {
  const split = note.indexOf("\n\n");
  const text = note.slice(0, split + 1);
  const [origin, size, root] = text.split("\n");
  const signatures = note.slice(split + 2).split("\n").filter(Boolean).map((line) => {
    const m = line.match(/^\u2014 (\S+) (\S+)$/);
    return m ? { name: m[1], bytes: b64(m[2]) } : null;
  }).filter(Boolean);
  return { text, origin, size: Number(size), root: b64(root), signatures };
}

async function checkSignature(cp, vkeys) {
  if (!crypto.subtle || typeof crypto.subtle.importKey !== "function") return "unsupported";
  for (const vkey of vkeys) {
    const [name, keyHash, keyB64] = vkey.split("+");
    const keyBytes = b64(keyB64);
    if (keyBytes[0] !== 1) continue; // 0x01: plain Ed25519 signer key
    for (const sig of cp.signatures) {
      if (sig.name !== name || hex(sig.bytes.subarray(0, 4)) !== keyHash) continue;
      let key;
      try {
        key = await crypto.subtle.importKey("raw", keyBytes.subarray(1), { name: "Ed25519" }, false, ["verify"]);
      } catch {
        return "unsupported";
      }
      return (await crypto.subtle.verify({ name: "Ed25519" }, key, sig.bytes.subarray(4), enc.encode(cp.text))) ? "ok" : "bad";
    }
  }
  return "bad";
}

/** [{check, ok: true|false|null}] for a kept file; ``vkeys``: the log's verifier keys. */
export async function verifyKept(bytes, vkeys) {
  const { receipt, result } = splitKept(bytes);
  const checks = [];
  const record = receipt.record ? JSON.parse(receipt.record) : null;
  if (result && record && record.response_sha256) {
    checks.push({ check: "verify_body", ok: hex(await sha256(result)) === record.response_sha256 });
  } else {
    checks.push({ check: "no_body", ok: null });
  }
  const leaf = b64(receipt.leaf_hash);
  if (receipt.record) {
    checks.push({ check: "verify_leaf", ok: same(await sha256(Uint8Array.of(0), enc.encode(receipt.record)), leaf) });
  }
  const cp = parseCheckpoint(receipt.checkpoint);
  let included = false;
  try {
    const root = await rootFromInclusion(leaf, receipt.index, cp.size, receipt.inclusion_proof.map(b64));
    included = cp.origin === receipt.origin && same(root, cp.root);
  } catch {
    included = false;
  }
  checks.push({ check: "verify_inclusion", ok: included });
  const sig = await checkSignature(cp, vkeys);
  checks.push(sig === "unsupported" ? { check: "sig_unsupported", ok: null } : { check: "verify_sig", ok: sig === "ok" });
  return { checks, record, receipt };
}
