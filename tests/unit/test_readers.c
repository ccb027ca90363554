/* test_readers.c: what the reader monitor reports (ct_readers_diff) and
 * what a reader binding accepts (ct_readers_card_in), without pcscd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "custodian/ct_readers.h"

static const uint8_t atr_a[] = { 0x3b, 0x88, 0x80, 0x01 };
static const uint8_t atr_b[] = { 0x3b, 0x02, 0x11, 0x22 };

static void
add(ct_readers_snapshot *s, const char *name, const uint8_t *atr,
    size_t atr_len)
{
	ct_reader *r = &s->readers[s->n++];

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->card = atr != NULL;
	if (atr != NULL)
		memcpy(r->atr, atr, atr_len);
	r->atr_len = atr != NULL ? atr_len : 0;
}

static ct_readers_snapshot
snap(ct_pcscd_state st)
{
	ct_readers_snapshot s;

	memset(&s, 0, sizeof(s));
	s.pcscd = st;
	return s;
}

/* The events from a to b as "kind reader" lines, for one comparison. */
static const char *
diff(const ct_readers_snapshot *a, const ct_readers_snapshot *b)
{
	static char out[4096];
	ct_readers_event evs[CT_READERS_EVENTS_MAX];
	size_t i, n, off = 0;

	n = ct_readers_diff(a, b, evs, CT_READERS_EVENTS_MAX);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s%s%s;",
		    ct_readers_event_name(evs[i].kind), evs[i].reader[0] ? " " : "",
		    evs[i].reader, evs[i].atr_len ? "+atr" : "");
	return out;
}

static void
test_first_look(void **state)
{
	ct_readers_snapshot a = snap(CT_PCSCD_UNKNOWN), b = snap(CT_PCSCD_AVAILABLE);

	add(&b, "R0", atr_a, sizeof(atr_a));
	add(&b, "R1", NULL, 0);
	assert_string_equal(diff(&a, &b), "pcscd_available;reader_added R0;"
	    "card_inserted R0+atr;reader_added R1;");
	b = snap(CT_PCSCD_UNAVAILABLE);
	assert_string_equal(diff(&a, &b), "pcscd_unavailable;");
	assert_string_equal(diff(&b, &b), "");
}

static void
test_cards(void **state)
{
	ct_readers_snapshot a = snap(CT_PCSCD_AVAILABLE), b;
	ct_readers_event ev[2];

	add(&a, "R0", NULL, 0);
	add(&a, "R1", NULL, 0);
	b = a;
	assert_string_equal(diff(&a, &b), "");
	add(&b, "R2", NULL, 0);
	b.readers[1] = b.readers[2];
	b.n = 2; /* R1 went, R2 came */
	b.readers[0].card = true;
	memcpy(b.readers[0].atr, atr_a, sizeof(atr_a));
	b.readers[0].atr_len = sizeof(atr_a);
	assert_string_equal(diff(&a, &b), "reader_removed R1;"
	    "card_inserted R0+atr;reader_added R2;");
	assert_string_equal(diff(&b, &a), "reader_removed R2;"
	    "card_removed R0;reader_added R1;");

	/* Another card in the same reader: out, then in, with its ATR. */
	a = b;
	memcpy(b.readers[0].atr, atr_b, sizeof(atr_b));
	assert_string_equal(diff(&a, &b), "card_removed R0;card_inserted R0+atr;");
	assert_int_equal(ct_readers_diff(&a, &b, ev, 2), 2);
	assert_int_equal(ev[0].atr_len, 0);
	assert_int_equal(ev[1].kind, CT_RD_CARD_INSERTED);
	assert_memory_equal(ev[1].atr, atr_b, sizeof(atr_b));
	assert_int_equal(ev[1].atr_len, sizeof(atr_b));
	/* A reader that goes with its card takes the card along. */
	b.n = 0;
	assert_string_equal(diff(&a, &b), "card_removed R0;reader_removed R0;"
	    "reader_removed R2;");
}

/* pcscd away: one event, readers not compared; back: only what changed
 * since the readers the monitor saw last. */
static void
test_pcscd_away(void **state)
{
	ct_readers_snapshot a = snap(CT_PCSCD_AVAILABLE), gone = snap(CT_PCSCD_UNAVAILABLE), b;

	add(&a, "R0", atr_a, sizeof(atr_a));
	add(&a, "R1", NULL, 0);
	assert_string_equal(diff(&a, &gone), "pcscd_unavailable;");
	b = a;
	b.pcscd = CT_PCSCD_UNAVAILABLE; /* what the monitor keeps */
	assert_string_equal(diff(&b, &a), "pcscd_available;");
	a.readers[0].card = false;
	assert_string_equal(diff(&b, &a), "pcscd_available;card_removed R0;");
}

static void
test_capacity(void **state)
{
	ct_readers_snapshot a = snap(CT_PCSCD_UNKNOWN), b = snap(CT_PCSCD_AVAILABLE);
	ct_readers_event evs[CT_READERS_EVENTS_MAX];
	char name[16];
	size_t i;

	for (i = 0; i < CT_READERS_MAX; i++) {
		snprintf(name, sizeof(name), "R%zu", i);
		add(&b, name, atr_a, sizeof(atr_a));
	}
	assert_true(2 * 2 * CT_READERS_MAX + 1 <= CT_READERS_EVENTS_MAX);
	assert_int_equal(ct_readers_diff(&a, &b, evs, CT_READERS_EVENTS_MAX),
	    1 + 2 * CT_READERS_MAX);
	assert_int_equal(ct_readers_diff(&a, &b, evs, 3), 3);
	assert_int_equal(ct_readers_diff(&a, &b, evs, 0), 0);
}

static void
test_card_in(void **state)
{
	ct_readers_snapshot s = snap(CT_PCSCD_AVAILABLE);

	add(&s, "Virtual PCD 00 00", atr_a, sizeof(atr_a));
	add(&s, "Virtual PCD 00 01", NULL, 0);
	assert_true(ct_readers_card_in(&s, "Virtual PCD 00 00", NULL, 0));
	assert_true(ct_readers_card_in(&s, "Virtual PCD 00 00", atr_a, sizeof(atr_a)));
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00 00", atr_b, sizeof(atr_b)));
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00 00", atr_a, 3));
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00 01", NULL, 0));
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00", NULL, 0));
	assert_false(ct_readers_card_in(&s, "", NULL, 0));
	/* Unknown is absent: what pcscd cannot say is not there. */
	s.pcscd = CT_PCSCD_UNAVAILABLE;
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00 00", NULL, 0));
	s.pcscd = CT_PCSCD_UNKNOWN;
	assert_false(ct_readers_card_in(&s, "Virtual PCD 00 00", NULL, 0));
}

static void
test_names(void **state)
{
	assert_string_equal(ct_readers_event_name(CT_RD_CARD_INSERTED), "card_inserted");
	assert_string_equal(ct_readers_event_name(CT_RD_PCSCD_AVAILABLE), "pcscd_available");
	assert_string_equal(ct_readers_event_name((ct_readers_event_kind)0), "unknown");
	assert_string_equal(ct_readers_event_name((ct_readers_event_kind)99), "unknown");
	assert_string_equal(ct_readers_pcscd_name(CT_PCSCD_UNAVAILABLE), "unavailable");
	assert_string_equal(ct_readers_pcscd_name(CT_PCSCD_UNKNOWN), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_look),
		cmocka_unit_test(test_cards),
		cmocka_unit_test(test_pcscd_away),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_card_in),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
