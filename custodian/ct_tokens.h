/* ct_tokens.h: open and log in to the tokens a policy names. */
#ifndef CT_TOKENS_H
#define CT_TOKENS_H

#include "custodian/ct_err.h"
#include "pkcs11/p11.h"
#include "policy/pol.h"

/* Load the module, find the token, read its PIN (pin_file, pin_env, or
 * the terminal when neither is set: custodians at their cards) and
 * log in.  The PIN is wiped before this returns. */
ct_err ct_token_connect(const pol_token *pt, p11_token **out, char *err,
			size_t errlen) CT_WUR;

#endif
