#!/usr/bin/env bash
# Envelope encryption: wrap, unwrap, datakey and rewrap with AES-256-GCM and
# RSA-OAEP keys; contexts are bound; old versions keep unwrapping.
. "$(dirname "$0")/lib.sh"

init_token svc
write_policy <<P
keys:
  - name: aes
    type: aes-256
    token: svc
    allow: { root: [wrap, unwrap, datakey, rewrap] }
  # SoftHSM2 decrypts RSA-OAEP only with SHA-1: this key says so.
  - name: rsa1
    type: rsa-3072
    token: svc
    oaep_hash: sha1
    allow: { root: [wrap, unwrap, datakey, rewrap] }
  - name: rsa256
    type: rsa-3072
    token: svc
    allow: { root: [wrap, unwrap] }
P
for k in aes rsa1 rsa256; do check "keygen $k" keygen "$k"; done
start_daemon || exit 1

head -c 100 /dev/urandom >"$W/secret"
for k in aes rsa1; do
	blob=$(ctl wrap "$k" -c "tenant=42" -i "$W/secret")
	check "$k: wrap" test -n "$blob"
	ctl unwrap "$blob" -c "tenant=42" >"$W/back"
	check "$k: unwrap gives the plaintext back" cmp "$W/secret" "$W/back"
	expect_err "$k: unwrap with another context fails" decrypt_failed \
		ctl unwrap "$blob" -c "tenant=43"
	expect_err "$k: unwrap without the context fails" decrypt_failed \
		ctl unwrap "$blob"
	ctl datakey "$k" -c ctx >"$W/dk.json"
	dk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plaintext"])' "$W/dk.json")
	dkblob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blob"])' "$W/dk.json")
	same "$k: datakey is 256 bits" "$(printf '%s' "$dk" | base64 -d | wc -c)" "32"
	same "$k: datakey blob unwraps to the data key" "$(ctl unwrap "$dkblob" -c ctx -b)" "$dk"
	# Flip one byte of the ciphertext tail: the tag must catch it.
	bad=$(printf '%s' "$blob" | base64 -d | python3 -c 'import sys,base64; b=bytearray(sys.stdin.buffer.read()); b[-1]^=1; print(base64.b64encode(b).decode())')
	expect_err "$k: tampered blob fails" decrypt_failed ctl unwrap "$bad" -c "tenant=42"
	eval "blob_$k=\$blob"
done

expect_err "garbage blob" bad_request ctl unwrap "not-base64!"
expect_err "blob of another format" bad_blob ctl unwrap "QUJDREVGR0g="

# SHA-256 OAEP: SoftHSM2 refuses it; the daemon says so clearly.
blob=$(ctl wrap rsa256 -i "$W/secret")
check "rsa256: wrap works (public key, in process)" test -n "$blob"
expect_err "rsa256: SoftHSM2 cannot do OAEP-SHA256: unsupported_mechanism" \
	unsupported_mechanism ctl unwrap "$blob"

# Rotation by keygen + SIGHUP: old blobs unwrap, rewrap moves them forward.
check "keygen aes v2" keygen aes
reload_daemon
same "aes current version is 2 after reload" "$(ctl list | awk '$1=="aes"{print $4}')" "v2"
ctl unwrap "$blob_aes" -c "tenant=42" >"$W/back"
check "v1 blob still unwraps" cmp "$W/secret" "$W/back"
nb=$(ctl rewrap "$blob_aes" -c "tenant=42")
ver=$(printf '%s' "$nb" | base64 -d | python3 -c 'import sys; b=sys.stdin.buffer.read(); n=b[5]; print(int.from_bytes(b[6+n:10+n],"big"))')
same "rewrap moves the blob to v2" "$ver" "2"
ctl unwrap "$nb" -c "tenant=42" >"$W/back"
check "rewrapped blob unwraps to the same plaintext" cmp "$W/secret" "$W/back"
check "rsa1 rewrap" ctl rewrap "$blob_rsa1" -c "tenant=42"
finish
