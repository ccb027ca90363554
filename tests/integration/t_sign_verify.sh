#!/usr/bin/env bash
# Sign and verify with every algorithm, through the real daemon and socket;
# signatures are also checked independently with openssl.
. "$(dirname "$0")/lib.sh"

init_token svc
write_policy <<P
keys:
  - name: ec256
    type: ec-p256
    token: svc
    allow: { root: [sign, verify, public_key] }
  - name: ec384
    type: ec-p384
    token: svc
    allow: { root: [sign, verify, public_key] }
  - name: rsapss
    type: rsa-3072
    token: svc
    allow: { root: [sign, verify, public_key] }
  - name: rsapkcs1
    type: rsa-3072
    token: svc
    sign: rsa-pkcs1-sha256
    allow: { root: [sign, verify, public_key] }
P
for k in ec256 ec384 rsapss rsapkcs1; do
	check "keygen $k" keygen "$k"
done
same "keygen names the version" "$(keygen ec256)" "ec256/v2"

# Generated keys are sensitive, never extractable and made on the token.
pkcs11-tool --module "$MODULE" --token-label svc --login --pin 1234 -O >"$W/objs" 2>/dev/null
n_priv=$(grep -c '^Private Key Object' "$W/objs")
n_good=$(grep -c 'Access:.*always sensitive, never extractable, local' "$W/objs")
same "5 private keys on the token" "$n_priv" "5"
same "every private key: always sensitive, never extractable, local" "$n_good" "5"

start_daemon || exit 1
printf 'the quick brown fox' >"$W/msg"
for k in ec256 ec384 rsapss rsapkcs1; do
	sig=$(ctl sign "$k" -i "$W/msg")
	check "$k: sign" test -n "$sig"
	check "$k: verify through the daemon" ctl verify "$k" "$sig" -i "$W/msg"
	printf 'the quick brown fix' >"$W/msg2"
	if ctl verify "$k" "$sig" -i "$W/msg2" >/dev/null; then
		not_ok "$k: altered message must not verify"
	else ok "$k: altered message does not verify"; fi
	ctl public-key "$k" >"$W/$k.pem"
	printf '%s' "$sig" | base64 -d >"$W/$k.sig"
	case $k in
	ec384) dg=-sha384; opt= ;;
	rsapss) dg=-sha256; opt="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32" ;;
	*) dg=-sha256; opt= ;;
	esac
	# shellcheck disable=SC2086
	check "$k: openssl verifies the signature" openssl dgst $dg $opt \
		-verify "$W/$k.pem" -signature "$W/$k.sig" "$W/msg"
done

# A precomputed digest signs the same as the message.
dgst=$(openssl dgst -sha256 -r "$W/msg" | cut -d" " -f1)
sig=$(ctl sign ec256 -d "$dgst")
check "sign a digest, verify the message" ctl verify ec256 "$sig" -i "$W/msg"
expect_err "digest of the wrong length" bad_request ctl sign ec384 -d "$dgst"

# Versions: v2 is current; v1 is retired: it verifies, it no longer signs.
expect_err "retired v1 does not sign" version_retired ctl sign ec256 -v 1 -i "$W/msg"
sig2=$(ctl sign ec256 -v 2 -i "$W/msg")
check "v2 signature verifies with v2 named" ctl verify ec256 "$sig2" -v 2 -i "$W/msg"
if ctl verify ec256 "$sig2" -v 1 -i "$W/msg" >/dev/null; then
	not_ok "v2 signature must not verify under v1"
else ok "v2 signature does not verify under v1"; fi
expect_err "unknown version" no_such_version ctl sign ec256 -v 9 -i "$W/msg"
expect_err "unknown key" no_such_key ctl sign nokey -i "$W/msg"
same "list shows the current version" "$(ctl list | awk '$1=="ec256"{print $4}')" "v2"
finish
