#!/usr/bin/env python3
"""Builds the committed seed corpus of the fuzz targets (fuzz/corpus/<target>/).

Sources:
  * gateway/: what a real sealpost gateway produced (one run of the README's client walk-through
    on a scratch data directory): three uploaded age files as stored (`*.age`), their plaintext
    bundles as `sealpost send` made them (`*.tar`, decrypted with the recipient's identity), the
    log's checkpoint, first level-0 tile and entry bundle, the upload receipts (tlog-proof) and
    the signed manifests;
  * the C2SP/CCTV age vectors (../shared/vectors/age-cctv/testdata, given as the first argument),
    zlib-compressed ones inflated, all under 16 KB and three multi-chunk ones;
  * age files made here by the Go `age` CLI (X25519, several recipients, ssh-ed25519, armour,
    empty and multi-chunk plaintexts);
  * notes, checkpoints, cosignatures, receipts and witness requests signed with the fuzz keys
    (Ed25519 seeds [7; 32] for the log and [8; 32] for the witness, as fuzz_targets/keys.rs), over
    a tree of the gateway's real log entries, so that mutations reach signature checks;
  * small hand-written inputs (tar members the extractor must refuse, header values).

Run from fuzz/seeds: python3 make_seeds.py ../../../shared/vectors/age-cctv/testdata
"""
import base64, hashlib, io, json, os, subprocess, sys, tarfile, tempfile, zlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
GW = os.path.join(HERE, "gateway")
CCTV = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/vectors/age-cctv/testdata")
MAX = 200_000
SMALL = 16_384
# The few multi-chunk vectors kept (the others differ only in tags the inspector cannot check).
KEEP_LARGE = {"stream_two_chunks", "stream_last_chunk_full_second", "stream_short_second_chunk"}


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- age files -------------------------------------------------------------------------------

def age_files():
    out = {}
    for name in sorted(os.listdir(GW)):
        if name.endswith(".age"):
            out["gateway-" + name] = read(os.path.join(GW, name))
    for name in sorted(os.listdir(CCTV)):
        raw = read(os.path.join(CCTV, name))
        head, _, body = raw.partition(b"\n\n")
        if b"compressed: zlib" in head:
            body = zlib.decompressobj().decompress(body, MAX + 1)
        if len(body) <= SMALL or (len(body) <= MAX and name in KEEP_LARGE):
            out["cctv-" + name] = body
    with tempfile.TemporaryDirectory() as tmp:
        def run(*args, stdin=None):
            return subprocess.run(args, input=stdin, capture_output=True, check=True, cwd=tmp).stdout
        run("age-keygen", "-o", "a.key")
        run("age-keygen", "-o", "b.key")
        ra = run("age-keygen", "-y", "a.key").decode().strip()
        rb = run("age-keygen", "-y", "b.key").decode().strip()
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "ssh")
        rs = read(os.path.join(tmp, "ssh.pub")).decode().strip()
        plain = os.urandom(300)
        out["age-x25519"] = run("age", "-r", ra, stdin=plain)
        out["age-x25519-empty"] = run("age", "-r", ra, stdin=b"")
        out["age-two-recipients"] = run("age", "-r", ra, "-r", rb, stdin=plain)
        out["age-ssh-ed25519"] = run("age", "-r", rs, stdin=plain)
        out["age-armored"] = run("age", "-a", "-r", ra, stdin=plain)
        out["age-armored-two"] = run("age", "-a", "-r", ra, "-r", rs, stdin=os.urandom(100))
        out["age-two-chunks"] = run("age", "-r", ra, stdin=os.urandom(65536 + 100))
        out["age-one-full-chunk"] = run("age", "-r", ra, stdin=os.urandom(65536))
    # Forged: a real header over plaintext, and over a gzip stream (refused, but close to passing).
    hdr = out["age-x25519"][: out["age-x25519"].index(b"\n---") + 1]
    hdr += out["age-x25519"][len(hdr):].split(b"\n", 1)[0] + b"\n"
    out["forged-text"] = hdr + b"id,name\n1,Example Person\n" * 4
    out["forged-gzip"] = hdr + zlib.compress(b"id,name\n1,Example Person\n" * 40)
    return out, hdr


def split_payload(data):
    """The payload of a binary age file (after the MAC line), or None."""
    if not data.startswith(b"age-encryption.org/v1\n"):
        return None
    i = data.find(b"\n--- ")
    if i < 0:
        return None
    j = data.find(b"\n", i + 1)
    return data[j + 1:] if j >= 0 else None


# ---- transparency ----------------------------------------------------------------------------

LOG_NAME = "fuzz.sealpost.example/log"
WITNESS_NAME = "fuzz.sealpost.example/witness"
LOG = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
WITNESS = Ed25519PrivateKey.from_private_bytes(bytes([8] * 32))


def pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name, typ, key):
    return hashlib.sha256(name.encode() + b"\n" + bytes([typ]) + pub(key)).digest()[:4]


def sig_line(name, raw):
    return "\u2014 " + name + " " + base64.b64encode(raw).decode() + "\n"


def sign_note(text, cosign_time=None):
    lines = sig_line(LOG_NAME, key_id(LOG_NAME, 1, LOG) + LOG.sign(text.encode()))
    if cosign_time is not None:
        msg = "cosignature/v1\ntime %d\n%s" % (cosign_time, text)
        t = cosign_time.to_bytes(8, "big")
        lines += sig_line(WITNESS_NAME, key_id(WITNESS_NAME, 4, WITNESS) + t + WITNESS.sign(msg.encode()))
    return text + "\n" + lines


def leaf(e):
    return hashlib.sha256(b"\x00" + e).digest()


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def split_point(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hs):
    if len(hs) == 1:
        return hs[0]
    k = split_point(len(hs))
    return node(mth(hs[:k]), mth(hs[k:]))


def path(m, hs):
    if len(hs) == 1:
        return []
    k = split_point(len(hs))
    if m < k:
        return path(m, hs[:k]) + [mth(hs[k:])]
    return path(m - k, hs[k:]) + [mth(hs[:k])]


def subproof(m, hs, b):
    n = len(hs)
    if m == n:
        return [] if b else [mth(hs)]
    k = split_point(n)
    if m <= k:
        return subproof(m, hs[:k], b) + [mth(hs[k:])]
    return subproof(m - k, hs[k:], False) + [mth(hs[:k])]


def checkpoint(size, root):
    return "%s\n%d\n%s\n" % (LOG_NAME, size, base64.b64encode(root).decode())


def decode_bundle(data):
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "big")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


def main():
    ages, hdr = age_files()
    for name, data in ages.items():
        put("envelope", name, data)
        p = split_payload(data)
        if p is not None:
            put("envelope_payload", name, p)
    put("envelope_payload", "zeros-64", bytes(64))
    put("envelope_payload", "text", b"id,name\n1,Example Person\n" * 3)

    entries = decode_bundle(read(os.path.join(GW, "entries.p29")))
    for i, e in enumerate(entries):
        put("log_entry", "gateway-%02d" % i, e)
    hs = [leaf(e) for e in entries]
    n = len(hs)
    root = mth(hs)
    cp_text = checkpoint(n, root)
    signed = sign_note(cp_text)
    cosigned = sign_note(cp_text, cosign_time=1_796_000_000)
    real_cp = read(os.path.join(GW, "checkpoint"))
    for t in ["note", "checkpoint"]:
        put(t, "gateway-checkpoint", real_cp)
        put(t, "fuzz-signed", signed)
        put(t, "fuzz-cosigned", cosigned)
    put("checkpoint", "text-only", cp_text)
    put("checkpoint", "text-extension", cp_text + "extension line\n")


    for m in [0, 5, 13, n - 1]:
        proof = "c2sp.org/tlog-proof@v1\nextra %s\nindex %d\n" % (base64.b64encode(entries[m]).decode(), m)
        proof += "".join(base64.b64encode(h).decode() + "\n" for h in path(m, hs)) + "\n" + cosigned
        put("proof", "fuzz-%d" % m, proof)
    for name in sorted(os.listdir(GW)):
        if name.startswith("receipts-"):
            for k, r in enumerate(json.loads(read(os.path.join(GW, name)))["receipts"]):
                put("proof", "gateway-%s-%d" % (name[9:17], k), r["receipt"])

    for old in [1, 7, 16, n]:
        body = "old %d\n" % old + "".join(base64.b64encode(h).decode() + "\n" for h in subproof(old, hs, True))
        put("witness_request", "fuzz-old-%d" % old, body + "\n" + signed)
    put("witness_request", "old-zero", "old 0\n\n" + cosigned)

    put("merkle", "a", bytes(range(16)))
    put("merkle", "b", os.urandom(64))
    put("merkle", "c", os.urandom(256))

    tile = read(os.path.join(GW, "tile0.p29"))
    bundle = read(os.path.join(GW, "entries.p29"))
    put("tiles", "gateway-entries", b"tile/entries/000.p/29\n" + bundle)
    put("tiles", "gateway-tile", b"tile/0/000.p/29\n" + tile)
    put("tiles", "deep-path", b"tile/2/x001/x234/067.p/8\n" + bundle[:200])
    put("tiles", "full", b"tile/1/x123/456\n\x00\x01a\x00\x00")

    for name in sorted(os.listdir(GW)):
        if name.startswith("manifest-"):
            m = json.loads(read(os.path.join(GW, name)))
            if m.get("manifest"):
                put("manifest", "gateway-" + name[9:17], m["manifest"])
    put("manifest", "v1", "sealpost.manifest/v1\ntransfer 0123456789abcdef0123456789abcdef\ndigest sha256:%s\n"
        "recipient hmpps/alice\nrecipient hmpps/zed\n" % ("ab" * 32))
    put("manifest", "delivery", "sealpost.delivery/v1\ntransfer 0123456789abcdef0123456789abcdef\ndigest sha256:%s\n"
        "recipient hmpps/alice\ntime 2026-12-06T09:30:00Z\ncheckpoint 42 %s\n" % ("ab" * 32, base64.b64encode(bytes([7] * 32)).decode()))

    for name in sorted(os.listdir(GW)):
        if name.endswith(".tar"):
            data = read(os.path.join(GW, name))
            if len(data) <= 8192:
                put("bundle", "gateway-" + name[:8], data)
    # Members extraction must refuse, after a real marker.
    def tar(members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
            for info, data in members:
                t.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()
    def reg(name, data=b""):
        i = tarfile.TarInfo(name)
        i.size = len(data)
        return (i, data)
    def special(name, kind, link=""):
        i = tarfile.TarInfo(name)
        i.type = kind
        i.linkname = link
        return (i, None)
    marker = reg(".sealpost-bundle-v1")
    body = b"hello\n"
    manifest = ("sealpost.bundle/v1\nsha256:%s %d a.txt\n" % (hashlib.sha256(body).hexdigest(), len(body))).encode()
    put("bundle", "hand-ok", tar([marker, reg("a.txt", body), reg(".sealpost-manifest", manifest)]))
    put("bundle", "hand-dotdot", tar([marker, reg("../a.txt", body), reg(".sealpost-manifest", manifest)]))
    put("bundle", "hand-symlink", tar([marker, special("a.txt", tarfile.SYMTYPE, "/etc/passwd"), reg(".sealpost-manifest", manifest)]))
    put("bundle", "hand-dir", tar([marker, special("d", tarfile.DIRTYPE), reg(".sealpost-manifest", manifest)]))
    put("bundle", "hand-absolute", tar([marker, reg("/tmp/a.txt", body), reg(".sealpost-manifest", manifest)]))
    put("bundle", "roundtrip", b"\x05a.txt\x06hello\n\x03b.c\x00")

    for i, v in enumerate([
        "bytes=0-", "bytes=0-1023", "bytes=1048576-", "bytes=-500", "bytes=1-2,3-4", "bytes= 7-9", "items=0-1",
        "18446744073709551615", "0", "007", "+5", "",
        "to aG1wcHMvYWxpY2U=,expires MzBk,classification T0ZGSUNJQUw=",
        "to aG1wcHMvYWxpY2UgaG1wcHMvYm9i,filename cmVjb3Jkcy5jc3Y=,manifest c2VhbHBvc3Q=,manifest_signature AAAA,manifest_key c2hhMjU2OmFi",
        "to aG1wcHMvYWxpY2U=,to aG1wcHMvYm9i",
    ]):
        put("http_headers", "value-%02d" % i, v)


main()
