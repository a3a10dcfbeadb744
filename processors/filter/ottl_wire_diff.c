/* ottl_wire_diff.c: see ottl_wire_diff.h. */
#include "ottl_wire_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 512

typedef struct answers {
    const ottl_expr_t *e;
    ottl_scratch_t s;
    int rc[MAX_ITEMS];
    char msg[MAX_ITEMS][96];
    size_t n;
    bool drop; /* second round: drop what is true */
    bool unsure;
} answers_t;

static int record(answers_t *a, int rc, const char *msg)
{
    if (a->n < MAX_ITEMS) {
        a->rc[a->n] = rc;
        snprintf(a->msg[a->n], sizeof a->msg[0], "%.95s", rc < 0 ? msg : "");
    }
    a->n++;
    return a->drop && rc == 1 ? OM_DROP : OM_KEEP;
}

static int on_wire(const om_wire_item_t *w, void *arg)
{
    answers_t *a = arg;
    int rc = proc_filter_ottl_eval_wire(a->e, w, &a->s);
    if (rc == OM_ENOTSUP) {
        a->unsure = true;
        return a->drop ? OM_ENOTSUP : record(a, rc, "");
    }
    return record(a, rc, a->s.msg);
}

static int on_decoded(om_item_t *it, void *arg)
{
    answers_t *a = arg;
    int rc = proc_filter_ottl_eval(a->e, it, &a->s);
    return record(a, rc, a->s.msg);
}

static uint8_t *packed(const om_batch_t *b, size_t *len)
{
    *len = om_batch_proto_size(b);
    uint8_t *buf = malloc(*len > 0 ? *len : 1);
    if (buf != NULL) {
        om_batch_proto_pack(b, buf);
    }
    return buf;
}

static char why[512];

/* The two encodings of the walks' results; NULL when they are the same. */
static const char *same_bytes(om_batch_t **w, om_batch_t **d)
{
    const char *res = NULL;
    /* Both decoded and encoded from their structs: the same request. */
    if (om_batch_edit(w, NULL) == 0 && om_batch_edit(d, NULL) == 0) {
        size_t lw = 0, ld = 0;
        uint8_t *bw = packed(*w, &lw), *bd = packed(*d, &ld);
        if (bw != NULL && bd != NULL && (lw != ld || memcmp(bw, bd, lw) != 0)) {
            snprintf(why, sizeof why, "after the drops: %zu bytes from the wire walk, %zu decoded",
                     lw, ld);
            res = why;
        }
        free(bw);
        free(bd);
    }
    return res;
}

static const char *compare(om_signal_t sig, const ottl_expr_t *e, const uint8_t *req, size_t len,
                           bool drop, ottl_wire_diff_stats_t *st)
{
    om_batch_t *w = NULL, *d = NULL;
    if (om_batch_decode_proto(sig, req, len, 0, &w, NULL) != 0) {
        return NULL;
    }
    if (!w->raw_valid || w->msg != NULL || om_batch_decode_proto(sig, req, len, 0, &d, NULL) != 0) {
        st->not_wire_only += !drop;
        om_batch_release(w);
        return NULL;
    }
    om_level_t level = sig == OM_SIG_TRACES ? OM_LEVEL_SPAN : OM_LEVEL_LOG;
    static answers_t aw, ad;
    memset(&aw, 0, sizeof aw);
    memset(&ad, 0, sizeof ad);
    aw.e = ad.e = e;
    aw.drop = ad.drop = drop;
    int rw = om_batch_wire_walk(&w, level, on_wire, &aw, NULL);
    int rd = om_batch_walk(&d, level, on_decoded, &ad, NULL);
    const char *res = NULL;
    if (rw == OM_ENOMEM || rd == OM_ENOMEM || (drop && aw.unsure)) {
        goto out; /* the wire stepped aside: nothing to compare */
    }
    if (rw < 0 || rd < 0 || aw.n != ad.n) {
        snprintf(why, sizeof why, "wire walk %d (%zu items), decoded walk %d (%zu items)", rw, aw.n,
                 rd, ad.n);
        res = why;
        goto out;
    }
    st->requests += !drop;
    for (size_t i = 0; i < aw.n && i < MAX_ITEMS; i++) {
        if (!drop) {
            st->items++;
            st->on_wire += aw.rc[i] != OM_ENOTSUP;
            st->stepped_aside += aw.rc[i] == OM_ENOTSUP;
        }
        if (aw.rc[i] != OM_ENOTSUP && (aw.rc[i] != ad.rc[i] || strcmp(aw.msg[i], ad.msg[i]) != 0)) {
            snprintf(why, sizeof why, "item %zu: %d (%s) on the wire, %d (%s) decoded", i, aw.rc[i],
                     aw.msg[i], ad.rc[i], ad.msg[i]);
            res = why;
            goto out;
        }
    }
    if (drop) {
        if (rw != rd || w->items != d->items) {
            snprintf(why, sizeof why, "drops: %d (%zu left) on the wire, %d (%zu left) decoded", rw,
                     w->items, rd, d->items);
            res = why;
            goto out;
        }
        st->dropped += rw > 0 ? (size_t)rw : 0;
        res = same_bytes(&w, &d);
    }
out:
    proc_filter_scratch_free(&aw.s);
    proc_filter_scratch_free(&ad.s);
    om_batch_release(w);
    om_batch_release(d);
    return res;
}

const char *ottl_wire_diff(om_signal_t sig, const ottl_expr_t *e, const uint8_t *req, size_t len,
                           ottl_wire_diff_stats_t *st)
{
    ottl_wire_diff_stats_t local = {0};
    st = st != NULL ? st : &local;
    const char *res = compare(sig, e, req, len, false, st);
    return res != NULL ? res : compare(sig, e, req, len, true, st);
}
