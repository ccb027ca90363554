#!/usr/bin/env python3
"""Write the seed corpora of the libFuzzer harnesses into tests/fuzz/corpus/.

The output is committed; rerun this after changing it.  It is deterministic:
the "random" bytes (IVs, ciphertexts, encrypted keys) come from SHA-256 of a
label, and the audit log's times are fixed.  Blobs follow docs/protocol.md
("Wrapped blobs"); the audit chain follows docs/audit.md.
"""
import base64
import hashlib
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def pseudo(label, n):
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def b64(b):
    return base64.b64encode(b).decode()


# ---- blobs ----

def blob_header(alg, name, version):
    n = name.encode()
    return b"CTB1" + bytes([alg, len(n)]) + n + struct.pack(">I", version)


def blob(alg, name, version, ct_len, ek_len=0, label="blob"):
    b = blob_header(alg, name, version)
    if alg != 1:
        b += struct.pack(">H", ek_len) + pseudo(label + "/ek", ek_len)
    b += pseudo(label + "/iv", 12)
    b += struct.pack(">H", ct_len) + pseudo(label + "/ct", ct_len)
    return b


AES_BLOB = blob(1, "aes", 1, 100 + 16, label="aes")
RSA_BLOB = blob(3, "rsa1", 2, 32 + 16, ek_len=384, label="rsa1")
RSA256_BLOB = blob(2, "rsa256", 1, 16, ek_len=384, label="rsa256")

BLOBS = {
    "aes_gcm_v1": AES_BLOB,
    "rsa_oaep_sha1_v2": RSA_BLOB,
    "rsa_oaep_sha256_empty": RSA256_BLOB,
    "aes_long_name": blob(1, "k." + "x" * 62, 4294967295, 4096 + 16,
                          label="long"),
    # near misses
    "bad_version0": blob(1, "aes", 0, 32, label="v0"),
    "bad_trailing_byte": AES_BLOB + b"\0",
    "bad_truncated": AES_BLOB[:-1],
    "bad_alg4": blob(1, "aes", 1, 32, label="a4").replace(b"CTB1\x01", b"CTB1\x04", 1),
    "bad_short_tag": blob(1, "aes", 1, 15, label="short"),
    "bad_name": blob(1, "a/b", 1, 32, label="name"),
    "bad_ek_zero": blob(2, "rsa", 1, 32, ek_len=0, label="ek0"),
    # the same blobs as base64 text, as they travel in requests
    "b64_aes_gcm_v1": b64(AES_BLOB).encode(),
    "b64_rsa_oaep_sha1_v2": b64(RSA_BLOB).encode(),
    "b64_not_a_blob": b"QUJDREVGR0g=",
}

# ---- requests ----

DIGEST = hashlib.sha256(b"invoice 42").digest()


def req(**fields):
    d = {"v": 1}
    d.update(fields)
    return json.dumps(d, separators=(",", ":")).encode()


REQUESTS = {
    "sign_data": req(id="r1", op="sign", key="payments", data=b64(b"hello")),
    "sign_digest": req(id="r-2", op="sign", key="payments", version=2,
                       digest=b64(DIGEST)),
    "verify": req(id="r3", op="verify", key="payments",
                  signature=b64(pseudo("sig", 71)), data=b64(b"hello")),
    "public_key": req(op="public_key", key="payments", version=1),
    "wrap": req(id="w1", op="wrap", key="aes", plaintext=b64(pseudo("pt", 100)),
                context="tenant=42"),
    "unwrap": req(id="u1", op="unwrap", blob=b64(AES_BLOB), context="tenant=42"),
    "datakey": req(id="d1", op="datakey", key="rsa1", context="ctx"),
    "rewrap": req(id="rw", op="rewrap", blob=b64(RSA_BLOB), context="tenant=42"),
    "list_keys": req(id="l", op="list_keys"),
    "status": req(op="status"),
    "pretty": b'{ "v" : 1 , "op" : "status" , "id" : "spaced" }',
    "context_unicode": b'{"v":1,"op":"datakey","key":"k","context":"t\\u00e9\\ud83d\\ude00 \\"q\\""}',
    # near misses
    "bad_duplicate_key": b'{"v":1,"op":"status","op":"status"}',
    "bad_unknown_field": req(op="list_keys", key="x"),
    "bad_data_and_digest": req(op="sign", key="k", data="AA==", digest=b64(DIGEST)),
    "bad_missing_key": req(op="wrap", plaintext="AA=="),
    "bad_version0": req(op="public_key", key="k", version=0),
    "bad_base64": req(op="sign", key="k", data="aGVsbG8"),
    "bad_not_object": b'[1,"status"]',
    "bad_v2": b'{"v":2,"op":"status"}',
    "bad_id": b'{"v":1,"id":"a\\"b","op":"status"}',
    "bad_unknown_op": req(id="x", op="launch"),
    "bad_key_name": req(op="public_key", key="a b"),
    "bad_json": b'{"v":1,"op":"sign","key":',
}

# ---- policies ----

POLICY_FULL = f"""version: 1
service:
  socket: /run/custodian/ct.sock
  audit_log: audit.log
  workers: 4
tokens:
  - name: svc
    module: {MODULE}
    label: svc
    pin_file: pin
clients:
  - name: root
    uid: 0
  - name: billing
    uid: 1001
    gid: 1001
keys:
  - name: aes
    type: aes-256
    token: svc
    allow: {{ root: [wrap, unwrap, datakey, rewrap] }}
  # SoftHSM2 decrypts RSA-OAEP only with SHA-1: this key says so.
  - name: rsa1
    type: rsa-3072
    token: svc
    oaep_hash: sha1
    allow: {{ root: [wrap, unwrap, datakey, rewrap] }}
  - name: rsa256
    type: rsa-3072
    token: svc
    sign: rsa-pkcs1-sha256
    allow:
      root: [wrap, unwrap, sign, verify, public_key]
      billing: [verify]
"""

POLICY_DOCS = f"""version: 1
service:
  socket: run/custodian.sock
  audit_log: audit.log
  workers: 2
tokens:
  - name: service
    module: {MODULE}
    label: custodian-demo
    pin_file: pin.txt
clients:
  - name: billing
    uid: 1001
  - name: frontend
    group: root
  - name: admin
    user: root
keys:
  - name: payments
    type: ec-p256
    token: service
    allow:
      billing: [sign, verify, public_key]
  - name: receipts
    type: ec-p384
    token: service
    sign: ecdsa-sha384
    allow:
      admin: [public_key]
  - name: envelopes
    type: aes-256
    token: service
    allow:
      frontend: [wrap, unwrap, datakey, rewrap]
"""

POLICY_URI = f"""# two tokens, one by URI with the PIN in the environment
version: 1
tokens:
  - name: a
    module: {MODULE}
    uri: "pkcs11:token=custodian;serial=0001"
    pin_env: CT_PIN_A
  - {{name: b, module: "{MODULE}", label: "b", pin_file: "/etc/custodian/pin-b"}}
clients: []
keys: []
"""

POLICY_MIN = f"""version: 1
tokens: [{{name: t, module: {MODULE}, label: t, pin_env: PIN}}]
keys: []
"""

POLICY_EXPIRING = f"""version: 1
tokens: [{{name: t, module: {MODULE}, label: t, pin_env: PIN}}]
engagements:
  - name: audit-2030
    until: 2030-01-10T00:00:00Z
    description: external audit
  - {{name: short, until: "2030-01-02T00:00:00+01:00"}}
clients:
  - {{name: contractor, uid: 2001, until: 2030-01-05T00:00:00Z}}
  - {{name: auditor, uid: 2002, engagement: audit-2030}}
  - {{name: staff, gid: 100}}
keys:
  - name: k
    type: aes-256
    token: t
    allow:
      contractor: [wrap]
      auditor: {{ops: [unwrap], until: 2031-01-01T00:00:00-05:00}}
      staff:
        ops: [wrap, unwrap]
        engagement: short
"""

POLICIES = {
    "full.yaml": POLICY_FULL,
    "expiring.yaml": POLICY_EXPIRING,
    "bad_time.yaml": POLICY_EXPIRING.replace("2030-01-05T00:00:00Z",
                                             "2030-01-05T00:00:00-00:00"),
    "docs_example.yaml": POLICY_DOCS,
    "uri_pin_env.yaml": POLICY_URI,
    "minimal_flow.yaml": POLICY_MIN,
    # near misses
    "bad_duplicate_key.yaml": POLICY_FULL.replace("name: rsa256", "name: aes"),
    "bad_unknown_client.yaml": POLICY_FULL.replace("billing: [verify]",
                                                   "nobody: [verify]"),
    "bad_relative_module.yaml": POLICY_MIN.replace(MODULE, "libsofthsm2.so"),
    "bad_anchor.yaml": POLICY_MIN.replace("keys: []", "keys: &k []\nx: *k"),
    "bad_tag.yaml": POLICY_MIN.replace("version: 1", "version: !!int 1"),
    "bad_op_for_type.yaml": POLICY_FULL.replace(
        "type: aes-256\n    token: svc\n    allow: { root: [wrap",
        "type: aes-256\n    token: svc\n    allow: { root: [sign"),
    "bad_two_documents.yaml": POLICY_MIN + "---\n" + POLICY_MIN,
}

# ---- audit logs ----


def audit_log(events, first=1, prev="0" * 64):
    lines = []
    for i, ev in enumerate(events, first):
        head = {"seq": i, "time": f"2026-11-23T19:04:0{i % 10}.123Z", "prev": prev}
        if ev.get("event") == "checkpoint":
            ev = dict(ev, head_seq=i - 1, head=prev)
        head.update(ev)
        line = json.dumps(head, separators=(",", ":")).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return b"".join(l + b"\n" for l in lines)


AUDIT_OK = audit_log([
    {"event": "start", "policy": "/etc/custodian/policy.yaml",
     "policy_digest": hashlib.sha256(POLICY_FULL.encode()).hexdigest()},
    {"event": "request", "peer": {"uid": 0, "gid": 0, "pid": 4242}, "id": "r-7",
     "op": "unwrap", "key": "aes", "version": 1, "result": "ok"},
    {"event": "request", "peer": {"uid": 1001, "gid": 1001, "pid": 4243},
     "op": "sign", "key": "rsa256", "result": "not_authorized",
     "detail": "sign on key \"rsa256\" is not granted to this peer"},
])
_lines = AUDIT_OK.split(b"\n")
# Checkpoints and rotation (docs/audit.md); signatures are only shaped
# right: the harness checks the chain and the form, not the key.
CHECKPOINT = {"event": "checkpoint", "key": "audit", "version": 1,
              "alg": "ecdsa-sha256", "signature": b64(pseudo("cp-sig", 71))}
AUDIT_CP = audit_log([{"event": "start", "policy": "/p.yaml"}, CHECKPOINT])
AUDIT_ROTATED = audit_log([
    {"event": "rotate", "previous_file": "audit.log.00000000000000000001",
     "checkpoint": dict(CHECKPOINT, head_seq=3, head="ab" * 32)},
    {"event": "stop"}, CHECKPOINT], first=5, prev="cd" * 32)

AUDITS = {
    "valid_3_lines.log": AUDIT_OK,
    "valid_1_line.log": _lines[0] + b"\n",
    # near misses
    "bad_prev.log": AUDIT_OK.replace(b'"r-7"', b'"r-8"'),
    "bad_torn_tail.log": AUDIT_OK[:-1],
    "bad_seq_gap.log": b"\n".join([_lines[0], _lines[2]]) + b"\n",
    "bad_not_json.log": _lines[0] + b"\n{\"seq\":2,\n",
    "valid_checkpoint.log": AUDIT_CP,
    "valid_rotated.log": AUDIT_ROTATED,
    "bad_checkpoint_head.log": AUDIT_CP.replace(b'"head_seq":1', b'"head_seq":2'),
}


# ---- approval statements ----
# Canonical text (custodian/ct_stmt.h): fixed lines in a fixed order.

POLICY_DIGEST = "sha256:" + hashlib.sha256(POLICY_FULL.encode()).hexdigest()
BACKUP_DIGEST = "sha256:" + hashlib.sha256(b"backup file").hexdigest()


def statement(action, *lines, rid="0123456789abcdef",
              created="2026-11-23T21:40:00Z", expires="2026-11-24T21:40:00Z"):
    head = ["custodian-statement: 1", f"request: {rid}", f"action: {action}"]
    tail = [f"policy: {POLICY_DIGEST}", f"created: {created}",
            f"expires: {expires}"]
    return "".join(l + "\n" for l in head + list(lines) + tail)


STMT_ROTATE = statement("rotate", "key: dek", "version: 2")

STATEMENTS = {
    "rotate.txt": STMT_ROTATE,
    "revoke.txt": statement("revoke", "key: sig", "version: 4294967295"),
    "policy.txt": statement("policy", f"digest: {BACKUP_DIGEST}"),
    "freeze_all.txt": statement("freeze"),
    "freeze_key.txt": statement("freeze", "key: dek"),
    "unfreeze_key.txt": statement("unfreeze", "key: k." + "x" * 62),
    "backup.txt": statement("backup", "file: /var/backups/custodian/b 1.ctbk"),
    "restore.txt": statement("restore", "file: /var/backups/custodian/b1.ctbk",
                             f"digest: {BACKUP_DIGEST}",
                             created="1970-01-01T00:00:00Z",
                             expires="9999-12-31T23:59:59Z"),
    # near misses
    "bad_feb30.txt": statement("revoke", "key: dek", "version: 1",
                               created="2026-02-30T00:00:00Z"),
    "bad_leading_zero.txt": STMT_ROTATE.replace("version: 2", "version: 02"),
    "bad_upper_hex.txt": STMT_ROTATE.replace("abcdef", "ABCDEF"),
    "bad_order.txt": statement("rotate", "version: 2", "key: dek"),
    "bad_extra_field.txt": statement("policy", "key: dek",
                                     f"digest: {BACKUP_DIGEST}"),
    "bad_missing_version.txt": statement("rotate", "key: dek"),
    "bad_expires_first.txt": statement("freeze", created="2026-11-24T21:40:00Z",
                                       expires="2026-11-23T21:40:00Z"),
    "bad_with_decision.txt": STMT_ROTATE + "decision: approve\n",
    "bad_crlf.txt": STMT_ROTATE.replace("\n", "\r\n"),
    "bad_torn.txt": STMT_ROTATE[:-1],
}


def write(sub, items):
    d = os.path.join(CORPUS, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in items.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("request", REQUESTS)
write("policy", POLICIES)
write("blob", BLOBS)
write("audit_verify", AUDITS)
write("stmt", STATEMENTS)
