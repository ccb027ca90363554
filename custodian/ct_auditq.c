/* ct_auditq.c: audit queries and summaries (see ct_auditq.h). */
#include "custodian/ct_auditq.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#define TALLY_MAX 1024	/* distinct names per table; the rest is "(other)" */
#define OTHER "(other)"
#define AGO_MAX (400LL * 366 * 86400) /* -N<unit> reaches back 400 years */

/* ---- times ---- */

/* Exactly n decimal digits. */
static bool
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

static bool
canonical_time(const char *s)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t i;

	if (s == NULL || strlen(s) != CT_AUDITQ_TIME_LEN)
		return false;
	for (i = 0; i < CT_AUDITQ_TIME_LEN; i++)
		if (form[i] == 'd' ? !isdigit((unsigned char)s[i]) :
		    s[i] != form[i])
			return false;
	return true;
}

/* "-N<unit>" or "@SECONDS" into a time. */
static bool
relative_time(const char *s, time_t now, time_t *t)
{
	static const struct { char unit; long long secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	long long n;
	char *end;
	size_t i;

	if (!isdigit((unsigned char)s[1]))
		return false;
	errno = 0;
	n = strtoll(s + 1, &end, 10);
	if (errno != 0 || n < 0)
		return false;
	if (s[0] == '@') {
		*t = (time_t)n;
		return *end == '\0';
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (end[0] == units[i].unit && end[1] == '\0' &&
		    n <= AGO_MAX / units[i].secs) {
			*t = now - (time_t)(n * units[i].secs);
			return true;
		}
	return false;
}

ct_err
ct_auditq_time(const char *s, time_t now, char out[CT_AUDITQ_TIME_LEN + 1])
{
	struct tm tm = { 0 }, chk;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	char buf[128];
	const char *p = s;
	time_t t;

	out[0] = '\0';
	if (s[0] == '-' || s[0] == '@') {
		if (!relative_time(s, now, &t) || gmtime_r(&t, &tm) == NULL)
			return CT_ERR_BAD_REQUEST;
		y = tm.tm_year + 1900, mo = tm.tm_mon + 1, d = tm.tm_mday;
		h = tm.tm_hour, mi = tm.tm_min, sec = tm.tm_sec;
	} else {
		if (!digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) ||
		    p[7] != '-' || !digits(p + 8, 2, &d))
			return CT_ERR_BAD_REQUEST;
		p += 10;
		if (*p == 'T') {
			if (!digits(p + 1, 2, &h) || p[3] != ':' ||
			    !digits(p + 4, 2, &mi))
				return CT_ERR_BAD_REQUEST;
			p += 6;
			if (*p == ':') {
				if (!digits(p + 1, 2, &sec))
					return CT_ERR_BAD_REQUEST;
				p += 3;
				if (*p == '.') {
					if (!digits(p + 1, 3, &ms))
						return CT_ERR_BAD_REQUEST;
					p += 4;
				}
			}
			if (*p == 'Z')
				p++;
		}
		if (*p != '\0')
			return CT_ERR_BAD_REQUEST;
		/* A real date and time: no 2026-02-30, no 24:00. */
		tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
		tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
		t = timegm(&tm);
		if (gmtime_r(&t, &chk) == NULL || chk.tm_year != y - 1900 ||
		    chk.tm_mon != mo - 1 || chk.tm_mday != d ||
		    chk.tm_hour != h || chk.tm_min != mi || chk.tm_sec != sec)
			return CT_ERR_BAD_REQUEST;
	}
	/* A wide buffer: the compiler cannot see the fields' ranges. */
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    y, mo, d, h, mi, sec, ms);
	if (!canonical_time(buf))
		return CT_ERR_BAD_REQUEST; /* a year past 9999 */
	memcpy(out, buf, CT_AUDITQ_TIME_LEN + 1);
	return CT_OK;
}

/* ---- matching ---- */

static bool
str_is(const json_t *obj, const char *field, const char *want)
{
	const char *s = json_string_value(json_object_get(obj, field));

	return s != NULL && strcmp(s, want) == 0;
}

static bool
int_is(const json_t *v, json_int_t want)
{
	return json_is_integer(v) && json_integer_value(v) == want;
}

bool
ct_auditq_match(const ct_auditq_filter *f, const json_t *line)
{
	const char *t, *res;

	if (f->since[0] != '\0' || f->until[0] != '\0') {
		t = json_string_value(json_object_get(line, "time"));
		if (!canonical_time(t) ||
		    (f->since[0] != '\0' && strcmp(t, f->since) < 0) ||
		    (f->until[0] != '\0' && strcmp(t, f->until) >= 0))
			return false;
	}
	if ((f->key != NULL && !str_is(line, "key", f->key)) ||
	    (f->op != NULL && !str_is(line, "op", f->op)) ||
	    (f->request_id != NULL && !str_is(line, "id", f->request_id)))
		return false;
	if (f->version != 0 &&
	    !int_is(json_object_get(line, "version"), f->version))
		return false;
	if (f->has_uid && !int_is(json_object_get(json_object_get(line,
	    "peer"), "uid"), (json_int_t)f->uid))
		return false;
	if (f->result != NULL) {
		if ((res = json_string_value(json_object_get(line,
		    "result"))) == NULL)
			return false;
		if (strcmp(f->result, "error") == 0)
			return strcmp(res, "ok") != 0;
		return strcmp(res, f->result) == 0;
	}
	return true;
}

/* ---- output, held back until the walk ends ---- */

struct outbuf {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory once: stays failed */
};

static void
ob_add(struct outbuf *ob, const char *s, size_t len)
{
	size_t cap = ob->cap ? ob->cap : 64 * 1024;
	char *np;

	if (ob->failed)
		return;
	while (cap - ob->len < len) {
		if (cap > SIZE_MAX / 2) {
			ob->failed = true;
			return;
		}
		cap *= 2;
	}
	if (cap != ob->cap) {
		if ((np = realloc(ob->p, cap)) == NULL) {
			ob->failed = true;
			return;
		}
		ob->p = np;
		ob->cap = cap;
	}
	memcpy(ob->p + ob->len, s, len);
	ob->len += len;
}

/* Text from the log, made safe for a terminal and cut to width. */
static void
safe_text(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s != NULL && s[0] != '\0' ? s : "-");
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

static const char *
field(const json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

static void
int_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		snprintf(buf, len, "-");
}

#define ROW_FMT "%-24s %8s %-17s %6s %-11s %-20s %4s %-16s %s\n"

static void
table_row(struct outbuf *ob, const json_t *line)
{
	char t[32], seq[24], ev[64], uid[24], op[32], key[80], ver[24];
	char res[40], id[80], row[512];
	int n;

	safe_text(field(line, "time"), t, sizeof(t));
	int_text(json_object_get(line, "seq"), seq, sizeof(seq));
	safe_text(field(line, "event"), ev, sizeof(ev));
	int_text(json_object_get(json_object_get(line, "peer"), "uid"), uid,
	    sizeof(uid));
	safe_text(field(line, "op"), op, sizeof(op));
	safe_text(field(line, "key"), key, sizeof(key));
	int_text(json_object_get(line, "version"), ver, sizeof(ver));
	safe_text(field(line, "result"), res, sizeof(res));
	safe_text(field(line, "id"), id, sizeof(id));
	n = snprintf(row, sizeof(row), ROW_FMT, t, seq, ev, uid, op, key, ver,
	    res, id);
	ob_add(ob, row, n < 0 ? 0 : (size_t)n >= sizeof(row) ?
	    sizeof(row) - 1 : (size_t)n);
}

/* ---- summary ---- */

struct tally {
	char *name;
	uint64_t n, ok, refused;
};

struct table {
	struct tally *t;
	size_t n, cap;
};

struct summary {
	struct table clients, keys, refusals, events;
	uint64_t lines;
	char first[CT_AUDITQ_TIME_LEN + 1], last[CT_AUDITQ_TIME_LEN + 1];
	bool failed;
};

/* Count one line under name; result NULL counts no outcome. */
static void
tally_add(struct summary *s, struct table *tb, const char *name,
	  const char *result)
{
	struct tally *t = NULL, *grown;
	size_t i;

	if (tb->n >= TALLY_MAX)
		name = OTHER; /* a hostile log cannot grow the tables */
	for (i = 0; i < tb->n && t == NULL; i++)
		if (strcmp(tb->t[i].name, name) == 0)
			t = &tb->t[i];
	if (t == NULL) {
		if (tb->n == tb->cap) {
			if ((grown = reallocarray(tb->t, tb->cap ? 2 * tb->cap :
			    16, sizeof(*tb->t))) == NULL) {
				s->failed = true;
				return;
			}
			tb->t = grown;
			tb->cap = tb->cap ? 2 * tb->cap : 16;
		}
		t = &tb->t[tb->n];
		memset(t, 0, sizeof(*t));
		if ((t->name = strdup(name)) == NULL) {
			s->failed = true;
			return;
		}
		tb->n++;
	}
	t->n++;
	if (result != NULL && strcmp(result, "ok") == 0)
		t->ok++;
	else if (result != NULL)
		t->refused++;
}

static void
summary_add(struct summary *s, const json_t *line)
{
	const char *t = field(line, "time"), *ev = field(line, "event");
	const char *res = field(line, "result"), *key = field(line, "key");
	const json_t *uid = json_object_get(json_object_get(line, "peer"),
	    "uid");
	char who[32];

	s->lines++;
	if (canonical_time(t)) {
		if (s->first[0] == '\0' || strcmp(t, s->first) < 0)
			snprintf(s->first, sizeof(s->first), "%s", t);
		if (strcmp(t, s->last) > 0)
			snprintf(s->last, sizeof(s->last), "%s", t);
	}
	tally_add(s, &s->events, ev != NULL ? ev : "(none)", NULL);
	if (ev == NULL || strcmp(ev, "request") != 0)
		return;
	if (json_is_integer(uid))
		snprintf(who, sizeof(who), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(uid));
	else
		snprintf(who, sizeof(who), "?");
	tally_add(s, &s->clients, who, res != NULL ? res : "?");
	tally_add(s, &s->keys, key != NULL ? key : "(no key)",
	    res != NULL ? res : "?");
	if (res == NULL || strcmp(res, "ok") != 0)
		tally_add(s, &s->refusals, res != NULL ? res : "?", NULL);
}

static int
tally_cmp(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* The user name of a uid, when the system knows it. */
static void
user_of(const char *uid, char *buf, size_t len)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024], *end;
	unsigned long u;

	buf[0] = '\0';
	errno = 0;
	u = strtoul(uid, &end, 10);
	if (errno == 0 && *end == '\0' && end != uid && u <= UINT32_MAX &&
	    getpwuid_r((uid_t)u, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 &&
	    pwp != NULL)
		safe_text(pwp->pw_name, buf, len);
}

static void
print_table(FILE *out, struct table *tb, const char *title, bool outcome,
	    bool users)
{
	char name[80], user[40], who[128];
	size_t i;

	if (tb->n == 0)
		return;
	qsort(tb->t, tb->n, sizeof(*tb->t), tally_cmp);
	if (outcome)
		fprintf(out, "\n%-32s %10s %10s %10s\n", title, "REQUESTS",
		    "OK", "REFUSED");
	else
		fprintf(out, "\n%-32s %10s\n", title, "COUNT");
	for (i = 0; i < tb->n; i++) {
		safe_text(tb->t[i].name, name, sizeof(name));
		if (users) {
			user_of(tb->t[i].name, user, sizeof(user));
			snprintf(who, sizeof(who), "uid %s%s%s%s", name,
			    user[0] ? " (" : "", user, user[0] ? ")" : "");
		} else
			snprintf(who, sizeof(who), "%s", name);
		if (outcome)
			fprintf(out, "%-32s %10" PRIu64 " %10" PRIu64 " %10"
			    PRIu64 "\n", who, tb->t[i].n, tb->t[i].ok,
			    tb->t[i].refused);
		else
			fprintf(out, "%-32s %10" PRIu64 "\n", who, tb->t[i].n);
	}
}

static void
summary_print(struct summary *s, FILE *out)
{
	fprintf(out, "period: %s .. %s, %" PRIu64 " lines\n",
	    s->first[0] ? s->first : "-", s->last[0] ? s->last : "-",
	    s->lines);
	print_table(out, &s->clients, "CLIENT", true, true);
	print_table(out, &s->keys, "KEY", true, false);
	print_table(out, &s->refusals, "REFUSAL", false, false);
	print_table(out, &s->events, "EVENT", false, false);
}

static void
table_free(struct table *tb)
{
	size_t i;

	for (i = 0; i < tb->n; i++)
		free(tb->t[i].name);
	free(tb->t);
}

/* ---- running ---- */

struct run {
	const ct_auditq_filter *f;
	ct_auditq_mode mode;
	struct outbuf ob;
	struct summary sum;
	uint64_t matched;
};

static ct_err
on_line(void *arg, const json_t *obj, const char *line, size_t len)
{
	struct run *st = arg;

	if (!ct_auditq_match(st->f, obj))
		return CT_OK;
	st->matched++;
	switch (st->mode) {
	case CT_AUDITQ_JSON:
		ob_add(&st->ob, line, len);
		ob_add(&st->ob, "\n", 1);
		break;
	case CT_AUDITQ_TABLE:
		table_row(&st->ob, obj);
		break;
	case CT_AUDITQ_SUMMARY:
		summary_add(&st->sum, obj);
		break;
	}
	return st->ob.failed || st->sum.failed ? CT_ERR_NOMEM : CT_OK;
}

ct_err
ct_auditq_run(const char *const *paths, size_t n_paths,
	      const ct_audit_walk_opts *o, const ct_auditq_filter *f,
	      ct_auditq_mode mode, FILE *out, uint64_t *matched,
	      ct_audit_report *rep)
{
	struct run st = { .f = f, .mode = mode };
	ct_err r;

	*matched = 0;
	r = ct_audit_walk(paths, n_paths, o, on_line, &st, rep);
	*matched = st.matched;
	if (r != CT_OK && !(r == CT_ERR_AUDIT && o->keep_going))
		goto out;
	if (mode == CT_AUDITQ_TABLE)
		fprintf(out, ROW_FMT, "TIME", "SEQ", "EVENT", "UID", "OP", "KEY",
		    "VER", "RESULT", "ID");
	if (mode == CT_AUDITQ_SUMMARY)
		summary_print(&st.sum, out);
	else if (st.ob.len > 0)
		fwrite(st.ob.p, 1, st.ob.len, out);
	if (fflush(out) != 0 || ferror(out))
		r = CT_ERR_IO;
 out:
	free(st.ob.p);
	table_free(&st.sum.clients);
	table_free(&st.sum.keys);
	table_free(&st.sum.refusals);
	table_free(&st.sum.events);
	return r;
}
