/* ct_readers.h: smartcard readers and cards, through pcsc-lite.
 *
 * The monitor runs in its own thread: it waits in SCardGetStatusChange
 * (readers, and the "\\?PnP?\Notification" pseudo-reader for readers that
 * come and go), so no pcsc call ever runs on the event loop.  Each change
 * becomes a snapshot (what is there now) and events (what changed), kept
 * under a mutex; the monitor then writes to an eventfd that the event loop
 * polls, and the loop takes both with ct_readers_take().
 *
 * When pcscd is not running or dies, the monitor says so once (one event,
 * one log line), reports no readers, and tries again with a new context,
 * backing off to one attempt a second.  A card's presence is therefore
 * known only while pcscd is: callers treat "unavailable" as "absent".
 *
 * The one-shot functions (ct_readers_scan, ct_readers_wait_card) are for
 * the command-line tool; they talk to pcscd directly, without a daemon.
 */
#ifndef CT_READERS_H
#define CT_READERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "custodian/ct_err.h"

#define CT_READERS_MAX 16	  /* pcsc-lite's PCSCLITE_MAX_READERS_CONTEXTS */
#define CT_READER_NAME_MAX 128	  /* pcsc-lite's MAX_READERNAME, with the NUL */
#define CT_ATR_MAX 33		  /* ISO 7816-3 */
#define CT_READERS_EVENTS_MAX 128 /* queued for the event loop */

typedef enum {
	CT_PCSCD_UNKNOWN = 0, /* not asked yet */
	CT_PCSCD_AVAILABLE,
	CT_PCSCD_UNAVAILABLE,
} ct_pcscd_state;

typedef struct {
	char name[CT_READER_NAME_MAX];
	bool card;		  /* a card is present */
	uint8_t atr[CT_ATR_MAX];  /* valid when card */
	size_t atr_len;
} ct_reader;

/* Everything known at one moment; readers is empty unless AVAILABLE. */
typedef struct {
	ct_pcscd_state pcscd;
	ct_reader readers[CT_READERS_MAX];
	size_t n;
} ct_readers_snapshot;

typedef enum {
	CT_RD_CARD_INSERTED = 1,
	CT_RD_CARD_REMOVED,
	CT_RD_READER_ADDED,
	CT_RD_READER_REMOVED,
	CT_RD_PCSCD_UNAVAILABLE,
	CT_RD_PCSCD_AVAILABLE,
} ct_readers_event_kind;

typedef struct {
	ct_readers_event_kind kind;
	char reader[CT_READER_NAME_MAX]; /* "" for the pcscd events */
	uint8_t atr[CT_ATR_MAX];	 /* card_inserted only */
	size_t atr_len;
} ct_readers_event;

/* The audit name of an event kind: "card_inserted", ... */
const char *ct_readers_event_name(ct_readers_event_kind k);
/* "available", "unavailable", "unknown". */
const char *ct_readers_pcscd_name(ct_pcscd_state s);

/* The events that lead from a to b, in order: pcscd coming or going
 * first, then, only when b is AVAILABLE, the reader and card changes from
 * a's readers to b's (removed readers first, then b's readers in order).
 * a's readers need not be AVAILABLE ones: the monitor passes the readers
 * it saw last, so that after pcscd comes back only what changed while it
 * was away is reported.  A card whose ATR changed is removed and inserted.
 * Writes at most max events (2 * 2 * CT_READERS_MAX + 1 always fit) and
 * returns how many it wrote. */
size_t ct_readers_diff(const ct_readers_snapshot *a,
		       const ct_readers_snapshot *b, ct_readers_event *out,
		       size_t max);

/* Is a card in this reader (exact name), with this ATR when atr_len > 0?
 * False whenever pcscd is not AVAILABLE. */
bool ct_readers_card_in(const ct_readers_snapshot *s, const char *reader,
			const uint8_t *atr, size_t atr_len);

typedef struct ct_readers ct_readers;

/* Start the monitor thread.  Call after the signal mask is set: the thread
 * inherits it.  Fails only for lack of memory, threads or fds; pcscd being
 * absent is not an error. */
ct_err ct_readers_start(ct_readers **out) CT_WUR;
/* Stop and join the thread, free everything (NULL is fine). */
void ct_readers_stop(ct_readers *rd);
/* Readable when there is news; ct_readers_take() clears it. */
int ct_readers_fd(const ct_readers *rd);
/* Copy the current snapshot, and move up to max queued events into evs,
 * oldest first (*n_evs their number).  *dropped is the number of events
 * lost since the last call because the queue was full. */
void ct_readers_take(ct_readers *rd, ct_readers_snapshot *snap,
		     ct_readers_event *evs, size_t max, size_t *n_evs,
		     size_t *dropped);

/* One look at the readers now.  CT_ERR_UNAVAILABLE (snapshot says so)
 * when pcscd is not running; CT_ERR_TOKEN with why filled for other pcsc
 * failures. */
ct_err ct_readers_scan(ct_readers_snapshot *out, char *why,
		       size_t whylen) CT_WUR;
/* Wait until a card is present in the named reader (any reader when NULL),
 * at most timeout_ms.  CT_OK with the reader's name in found (at least
 * CT_READER_NAME_MAX bytes, may be NULL); CT_ERR_TOKEN_ABSENT on timeout;
 * CT_ERR_UNAVAILABLE when pcscd is not running or goes away. */
ct_err ct_readers_wait_card(const char *reader, long timeout_ms, char *found,
			    char *why, size_t whylen) CT_WUR;

#endif
