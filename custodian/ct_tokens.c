/* ct_tokens.c: open and log in to a policy token. */
#include "custodian/ct_tokens.h"

#include <stdio.h>

#include <openssl/crypto.h>

#include "custodian/ct_util.h"

ct_err
ct_token_connect(const pol_token *pt, p11_token **out, char *err,
		 size_t errlen)
{
	p11_token_spec spec = { pt->module, pt->label, pt->uri };
	p11_token *t = NULL;
	char *pin = NULL, why[256];
	size_t pin_len = 0;
	ct_err r;

	*out = NULL;
	if ((r = p11_token_open(&spec, &t, why, sizeof(why))) != CT_OK) {
		snprintf(err, errlen, "token %s: %s", pt->name, why);
		goto out;
	}
	if (pt->pin_file != NULL)
		r = ct_secret_from_file(pt->pin_file, &pin, &pin_len, why, sizeof(why));
	else if (pt->pin_env != NULL)
		r = ct_secret_from_env(pt->pin_env, &pin, &pin_len, why, sizeof(why));
	else
		r = ct_secret_from_tty("PIN: ", &pin, &pin_len, why, sizeof(why));
	if (r != CT_OK) {
		snprintf(err, errlen, "token %s: PIN: %s", pt->name, why);
		goto out;
	}
	if ((r = p11_token_login(t, pin, pin_len)) != CT_OK) {
		snprintf(err, errlen, "token %s: login: %s", pt->name,
		    ct_strerror(r));
		goto out;
	}
	*out = t;
	t = NULL;
 out:
	if (pin != NULL)
		OPENSSL_secure_clear_free(pin, pin_len + 1);
	p11_token_free(t);
	return r;
}
