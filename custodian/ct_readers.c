/* ct_readers.c: the reader monitor and the one-shot reader calls. */
#include "custodian/ct_readers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <winscard.h>

#define PNP_READER "\\\\?PnP?\\Notification"
#define WAIT_MS 1000	   /* bounds a stop whose SCardCancel came too early */
#define BACKOFF_MIN_MS 100 /* first retry after pcscd went away */
#define BACKOFF_MAX_MS 1000

struct ct_readers {
	pthread_t thread;
	bool started;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on stop; CLOCK_MONOTONIC */
	/* Under mu. */
	bool stopping;
	bool has_ctx;
	SCARDCONTEXT ctx; /* the monitor's, for SCardCancel on stop */
	ct_readers_snapshot snap;
	ct_readers_event q[CT_READERS_EVENTS_MAX];
	size_t qn, dropped;
};

/* One pcsc context and the reader states it waits on: readers first, the
 * PnP pseudo-reader last. */
typedef struct {
	SCARDCONTEXT ctx;
	bool has_ctx;
	char names[CT_READERS_MAX][CT_READER_NAME_MAX];
	SCARD_READERSTATE st[CT_READERS_MAX + 1];
	size_t n;
} watch;

static const char *const event_names[] = {
	[CT_RD_CARD_INSERTED] = "card_inserted",
	[CT_RD_CARD_REMOVED] = "card_removed",
	[CT_RD_READER_ADDED] = "reader_added",
	[CT_RD_READER_REMOVED] = "reader_removed",
	[CT_RD_PCSCD_UNAVAILABLE] = "pcscd_unavailable",
	[CT_RD_PCSCD_AVAILABLE] = "pcscd_available",
};

const char *
ct_readers_event_name(ct_readers_event_kind k)
{
	if ((size_t)k >= sizeof(event_names) / sizeof(event_names[0]) ||
	    event_names[k] == NULL)
		return "unknown";
	return event_names[k];
}

const char *
ct_readers_pcscd_name(ct_pcscd_state s)
{
	return s == CT_PCSCD_AVAILABLE ? "available" :
	    s == CT_PCSCD_UNAVAILABLE ? "unavailable" : "unknown";
}

static const ct_reader *
find_reader(const ct_readers_snapshot *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->readers[i].name, name) == 0)
			return &s->readers[i];
	return NULL;
}

static bool
same_card(const ct_reader *a, const ct_reader *b)
{
	return a->card == b->card && (!a->card || (a->atr_len == b->atr_len &&
	    memcmp(a->atr, b->atr, a->atr_len) == 0));
}

static void
add_event(ct_readers_event *out, size_t max, size_t *n,
	  ct_readers_event_kind kind, const ct_reader *r)
{
	ct_readers_event *e;

	if (*n >= max)
		return;
	e = &out[(*n)++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	if (r == NULL)
		return;
	memcpy(e->reader, r->name, sizeof(e->reader));
	if (kind == CT_RD_CARD_INSERTED) {
		memcpy(e->atr, r->atr, r->atr_len);
		e->atr_len = r->atr_len;
	}
}

size_t
ct_readers_diff(const ct_readers_snapshot *a, const ct_readers_snapshot *b,
		ct_readers_event *out, size_t max)
{
	const ct_reader *r, *o;
	size_t i, n = 0;

	if (a->pcscd != b->pcscd && b->pcscd != CT_PCSCD_UNKNOWN)
		add_event(out, max, &n, b->pcscd == CT_PCSCD_AVAILABLE ?
		    CT_RD_PCSCD_AVAILABLE : CT_RD_PCSCD_UNAVAILABLE, NULL);
	if (b->pcscd != CT_PCSCD_AVAILABLE)
		return n;
	for (i = 0; i < a->n; i++) {
		r = &a->readers[i];
		if (find_reader(b, r->name) != NULL)
			continue;
		if (r->card)
			add_event(out, max, &n, CT_RD_CARD_REMOVED, r);
		add_event(out, max, &n, CT_RD_READER_REMOVED, r);
	}
	for (i = 0; i < b->n; i++) {
		r = &b->readers[i];
		if ((o = find_reader(a, r->name)) == NULL)
			add_event(out, max, &n, CT_RD_READER_ADDED, r);
		else if (same_card(o, r))
			continue;
		else if (o->card)
			add_event(out, max, &n, CT_RD_CARD_REMOVED, o);
		if (r->card)
			add_event(out, max, &n, CT_RD_CARD_INSERTED, r);
	}
	return n;
}

bool
ct_readers_card_in(const ct_readers_snapshot *s, const char *reader,
		   const uint8_t *atr, size_t atr_len)
{
	const ct_reader *r;

	if (s->pcscd != CT_PCSCD_AVAILABLE ||
	    (r = find_reader(s, reader)) == NULL || !r->card)
		return false;
	return atr_len == 0 || (r->atr_len == atr_len &&
	    memcmp(r->atr, atr, atr_len) == 0);
}

/* The resource manager is gone (not started, stopped, or restarted under
 * this context): only a new context can tell more. */
static bool
rv_gone(LONG rv)
{
	return rv == SCARD_E_NO_SERVICE || rv == SCARD_F_COMM_ERROR ||
	    rv == SCARD_E_SERVICE_STOPPED || rv == SCARD_E_INVALID_HANDLE;
}

static void
watch_close(ct_readers *rd, watch *w)
{
	if (!w->has_ctx)
		return;
	if (rd != NULL) {
		/* Unregister first: stop must not cancel a released context. */
		pthread_mutex_lock(&rd->mu);
		rd->has_ctx = false;
		pthread_mutex_unlock(&rd->mu);
	}
	SCardReleaseContext(w->ctx);
	w->has_ctx = false;
}

/* Wait for a change (timeout_ms may be 0), then make the states it found
 * the ones to wait from.  Timing out is success. */
static LONG
watch_wait(watch *w, DWORD timeout_ms, bool *relist)
{
	LONG rv;
	size_t i;

	*relist = false;
	rv = SCardGetStatusChange(w->ctx, timeout_ms, w->st, (DWORD)w->n + 1);
	if (rv == SCARD_E_TIMEOUT)
		return SCARD_S_SUCCESS;
	if (rv != SCARD_S_SUCCESS)
		return rv;
	for (i = 0; i <= w->n; i++) {
		if (w->st[i].dwEventState & SCARD_STATE_CHANGED)
			*relist = *relist || i == w->n ||
			    (w->st[i].dwEventState & SCARD_STATE_UNKNOWN);
		w->st[i].dwCurrentState = w->st[i].dwEventState &
		    ~(DWORD)SCARD_STATE_CHANGED;
	}
	return SCARD_S_SUCCESS;
}

/* Read the reader list afresh and the state of each reader now. */
static LONG
watch_list(watch *w)
{
	char *buf = NULL, *p, *end;
	DWORD len = SCARD_AUTOALLOCATE;
	bool relist;
	size_t l;
	LONG rv;

	w->n = 0;
	rv = SCardListReaders(w->ctx, NULL, (LPSTR)&buf, &len);
	if (rv == SCARD_S_SUCCESS && buf != NULL) {
		/* A multi-string: names, each NUL-terminated, then a NUL. */
		for (p = buf, end = buf + len; p < end && *p != '\0' &&
		    w->n < CT_READERS_MAX; p += l + 1) {
			l = strnlen(p, (size_t)(end - p));
			if (l >= CT_READER_NAME_MAX || l == (size_t)(end - p))
				continue; /* too long for pcsc-lite itself */
			memcpy(w->names[w->n], p, l + 1);
			w->n++;
		}
		SCardFreeMemory(w->ctx, buf);
	} else if (rv != SCARD_E_NO_READERS_AVAILABLE)
		return rv;
	memset(w->st, 0, sizeof(w->st));
	for (l = 0; l < w->n; l++)
		w->st[l].szReader = w->names[l];
	w->st[w->n].szReader = PNP_READER;
	/* Every state is UNAWARE: this returns at once.  The PnP reader
	 * reports a change on it (it counts readers from 0): not news. */
	return watch_wait(w, 0, &relist);
}

static LONG
watch_open(ct_readers *rd, watch *w)
{
	LONG rv;

	memset(w, 0, sizeof(*w));
	if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL,
	    &w->ctx)) != SCARD_S_SUCCESS)
		return rv;
	w->has_ctx = true;
	if (rd != NULL) {
		pthread_mutex_lock(&rd->mu);
		rd->ctx = w->ctx;
		rd->has_ctx = true;
		pthread_mutex_unlock(&rd->mu);
	}
	return watch_list(w);
}

static void
watch_snapshot(const watch *w, ct_readers_snapshot *out)
{
	const SCARD_READERSTATE *st;
	ct_reader *r;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->pcscd = CT_PCSCD_AVAILABLE;
	for (i = 0; i < w->n; i++) {
		st = &w->st[i];
		if (st->dwEventState & (SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE))
			continue; /* gone: the next list drops it */
		r = &out->readers[out->n++];
		memcpy(r->name, w->names[i], sizeof(r->name));
		r->card = (st->dwEventState & SCARD_STATE_PRESENT) != 0;
		if (r->card) {
			r->atr_len = st->cbAtr < CT_ATR_MAX ? st->cbAtr : CT_ATR_MAX;
			memcpy(r->atr, st->rgbAtr, r->atr_len);
		}
	}
}

/* Make now the published snapshot and queue the events that lead to it
 * from seen, the state last published (with the readers last seen). */
static void
publish(ct_readers *rd, ct_readers_snapshot *seen,
	const ct_readers_snapshot *now)
{
	ct_readers_event evs[CT_READERS_EVENTS_MAX];
	uint64_t one = 1;
	size_t i, n;

	n = ct_readers_diff(seen, now, evs, CT_READERS_EVENTS_MAX);
	if (n == 0 && now->n == seen->n)
		return;
	pthread_mutex_lock(&rd->mu);
	rd->snap = *now;
	for (i = 0; i < n; i++) {
		if (rd->qn < CT_READERS_EVENTS_MAX)
			rd->q[rd->qn++] = evs[i];
		else
			rd->dropped++;
	}
	pthread_mutex_unlock(&rd->mu);
	if (now->pcscd == CT_PCSCD_AVAILABLE)
		*seen = *now;
	else
		seen->pcscd = now->pcscd; /* keep the readers last seen */
	/* A full eventfd counter still reads as readable: ignore EAGAIN. */
	(void)!write(rd->efd, &one, sizeof(one));
}

/* Sleep ms unless stopped first; true when stopping. */
static bool
nap(ct_readers *rd, long ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rd->mu);
	while (!rd->stopping &&
	    pthread_cond_timedwait(&rd->cv, &rd->mu, &until) != ETIMEDOUT)
		;
	stop = rd->stopping;
	pthread_mutex_unlock(&rd->mu);
	return stop;
}

static bool
stopping(ct_readers *rd)
{
	bool stop;

	pthread_mutex_lock(&rd->mu);
	stop = rd->stopping;
	pthread_mutex_unlock(&rd->mu);
	return stop;
}

static void *
monitor(void *arg)
{
	static const ct_readers_snapshot gone = { .pcscd = CT_PCSCD_UNAVAILABLE };
	ct_readers *rd = arg;
	ct_readers_snapshot seen, now;
	long backoff = BACKOFF_MIN_MS;
	bool relist = false;
	watch w;
	LONG rv;

	memset(&seen, 0, sizeof(seen));
	while (!stopping(rd)) {
		rv = watch_open(rd, &w);
		if (rv == SCARD_S_SUCCESS)
			backoff = BACKOFF_MIN_MS;
		while (rv == SCARD_S_SUCCESS && !stopping(rd)) {
			watch_snapshot(&w, &now);
			publish(rd, &seen, &now);
			rv = watch_wait(&w, WAIT_MS, &relist);
			if (rv == SCARD_S_SUCCESS && relist)
				rv = watch_list(&w);
		}
		watch_close(rd, &w);
		if (rv == SCARD_E_CANCELLED || stopping(rd))
			break;
		/* Whatever failed (pcscd gone, mostly: rv_gone), the readers
		 * are unknown until a new context answers. */
		publish(rd, &seen, &gone);
		if (nap(rd, backoff))
			break;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

ct_err
ct_readers_start(ct_readers **out)
{
	pthread_condattr_t ca;
	ct_readers *rd;
	ct_err r = CT_ERR_INTERNAL;

	*out = NULL;
	if ((rd = calloc(1, sizeof(*rd))) == NULL)
		return CT_ERR_NOMEM;
	rd->efd = -1;
	if (pthread_mutex_init(&rd->mu, NULL) != 0)
		goto out_free;
	if (pthread_condattr_init(&ca) != 0)
		goto out_mu;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&rd->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_mu;
	}
	pthread_condattr_destroy(&ca);
	if ((rd->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto out_cv;
	if (pthread_create(&rd->thread, NULL, monitor, rd) != 0)
		goto out_cv;
	rd->started = true;
	*out = rd;
	return CT_OK;
 out_cv:
	if (rd->efd >= 0)
		close(rd->efd);
	pthread_cond_destroy(&rd->cv);
 out_mu:
	pthread_mutex_destroy(&rd->mu);
 out_free:
	free(rd);
	return r;
}

void
ct_readers_stop(ct_readers *rd)
{
	if (rd == NULL)
		return;
	pthread_mutex_lock(&rd->mu);
	rd->stopping = true;
	if (rd->has_ctx)
		SCardCancel(rd->ctx);
	pthread_cond_signal(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
	if (rd->started)
		pthread_join(rd->thread, NULL);
	close(rd->efd);
	pthread_cond_destroy(&rd->cv);
	pthread_mutex_destroy(&rd->mu);
	free(rd);
}

int
ct_readers_fd(const ct_readers *rd)
{
	return rd->efd;
}

void
ct_readers_take(ct_readers *rd, ct_readers_snapshot *snap,
		ct_readers_event *evs, size_t max, size_t *n_evs,
		size_t *dropped)
{
	uint64_t v;
	size_t n;

	/* Clear the fd before taking: news published after the take wakes
	 * the loop again. */
	(void)!read(rd->efd, &v, sizeof(v));
	pthread_mutex_lock(&rd->mu);
	*snap = rd->snap;
	n = rd->qn < max ? rd->qn : max;
	memcpy(evs, rd->q, n * sizeof(*evs));
	memmove(rd->q, rd->q + n, (rd->qn - n) * sizeof(*rd->q));
	rd->qn -= n;
	*dropped = rd->dropped;
	rd->dropped = 0;
	pthread_mutex_unlock(&rd->mu);
	*n_evs = n;
	if (rd->qn > 0) {
		v = 1; /* more than max queued: come back for the rest */
		(void)!write(rd->efd, &v, sizeof(v));
	}
}

static ct_err
pcsc_fail(LONG rv, char *why, size_t whylen)
{
	if (rv_gone(rv)) {
		snprintf(why, whylen, "pcscd is not running (%s)",
		    pcsc_stringify_error(rv));
		return CT_ERR_UNAVAILABLE;
	}
	snprintf(why, whylen, "pcsc: %s", pcsc_stringify_error(rv));
	return CT_ERR_TOKEN;
}

ct_err
ct_readers_scan(ct_readers_snapshot *out, char *why, size_t whylen)
{
	watch w;
	LONG rv;
	ct_err r = CT_OK;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if ((rv = watch_open(NULL, &w)) == SCARD_S_SUCCESS)
		watch_snapshot(&w, out);
	else
		r = pcsc_fail(rv, why, whylen);
	if (r == CT_ERR_UNAVAILABLE)
		out->pcscd = CT_PCSCD_UNAVAILABLE;
	watch_close(NULL, &w);
	return r;
}

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ct_err
ct_readers_wait_card(const char *reader, long timeout_ms, char *found,
		     char *why, size_t whylen)
{
	ct_readers_snapshot s;
	long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), left;
	bool relist;
	watch w;
	size_t i;
	LONG rv;
	ct_err r = CT_ERR_TOKEN_ABSENT;

	why[0] = '\0';
	if (found != NULL)
		found[0] = '\0';
	rv = watch_open(NULL, &w);
	while (rv == SCARD_S_SUCCESS) {
		watch_snapshot(&w, &s);
		for (i = 0; i < s.n; i++) {
			if (s.readers[i].card && (reader == NULL ||
			    strcmp(reader, s.readers[i].name) == 0)) {
				if (found != NULL)
					memcpy(found, s.readers[i].name,
					    CT_READER_NAME_MAX);
				r = CT_OK;
				goto out;
			}
		}
		if ((left = deadline - mono_ms()) <= 0) {
			snprintf(why, whylen, "no card %s%s%s", reader ? "in \"" :
			    "in any reader", reader ? reader : "", reader ? "\"" : "");
			goto out;
		}
		rv = watch_wait(&w, (DWORD)left, &relist);
		if (rv == SCARD_S_SUCCESS && relist)
			rv = watch_list(&w);
	}
	r = pcsc_fail(rv, why, whylen);
 out:
	watch_close(NULL, &w);
	return r;
}
