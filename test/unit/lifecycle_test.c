/* lifecycle_test.c: what the core requires of every registered factory, whatever its type.
 * The generic lifecycle test itself (STYLE.md §10) runs in each component's own tests,
 * through om_test_lifecycle() with the config that component needs (test/lib/om_lifecycle.c);
 * this file names no component. */
#include <ctype.h>

#include "om.h"
#include "om_test.h"

/* otelcol's rule for types: ^[a-zA-Z][0-9a-zA-Z_]{0,62}$. */
static bool valid_type(const char *t)
{
    size_t n = t != NULL ? strlen(t) : 0;
    if (n == 0 || n > 63 || !isalpha((unsigned char)t[0])) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!isalnum((unsigned char)t[i]) && t[i] != '_') {
            return false;
        }
    }
    return true;
}

/* Every field lies inside the config struct, and nested tables too. */
static bool fields_fit(const om_field_t *fields, size_t size)
{
    for (const om_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        if (f->type == OM_F_IGNORED || f->type == OM_F_REFUSED) {
            continue;
        }
        if (f->offset >= size) {
            fprintf(stderr, "  field %s: offset %zu outside the config (%zu bytes)\n", f->key,
                    f->offset, size);
            return false;
        }
        if (f->type == OM_F_SECTION && !fields_fit(f->fields, size - f->offset)) {
            return false;
        }
        /* A list's element table lies inside one element. */
        if (f->type == OM_F_SECLIST &&
            (f->elem_size == 0 || !fields_fit(f->fields, f->elem_size))) {
            return false;
        }
    }
    return true;
}

static void check_factory(const om_factory_t *f)
{
    ASSERT_EQ_UINT(f->abi, OM_FACTORY_ABI);
    ASSERT_TRUE(valid_type(f->type));
    for (const char *const *a = f->aliases; a != NULL && *a != NULL; a++) {
        ASSERT_TRUE(valid_type(*a));
    }
    ASSERT_TRUE(f->help != NULL && f->help[0] != '\0');
    ASSERT_TRUE((f->signals & ~(unsigned)OM_SIG_ALL) == 0);
    ASSERT_TRUE(f->create != NULL && f->shutdown != NULL && f->destroy != NULL);
    ASSERT_TRUE(f->config_size > 0 || f->fields == NULL);
    ASSERT_TRUE(fields_fit(f->fields, f->config_size));
    /* What consumes data has a consume function for each signal it declares. */
    if (f->kind == OM_PROCESSOR || f->kind == OM_EXPORTER) {
        ASSERT_TRUE(f->signals != 0);
        ASSERT_TRUE(!(f->signals & OM_SIG_TRACES) || f->consume_traces != NULL);
        ASSERT_TRUE(!(f->signals & OM_SIG_METRICS) || f->consume_metrics != NULL);
        ASSERT_TRUE(!(f->signals & OM_SIG_LOGS) || f->consume_logs != NULL);
    }
    if (f->kind == OM_EXTENSION) {
        ASSERT_EQ_UINT(f->signals, 0);
    }
}

static void test_every_factory(void)
{
    int n = 0;
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++, n++) {
        int before = om_test_failed_now;
        check_factory(*f);
        if (om_test_failed_now != before) {
            fprintf(stderr, "  in %s/%s\n", om_kind_name((*f)->kind), (*f)->type);
            return;
        }
    }
    ASSERT_TRUE(n >= 1);
}

/* Two factories of one kind must not answer to the same name. */
static void test_types_are_unique(void)
{
    for (const om_factory_t *const *f = om_factories; *f != NULL; f++) {
        for (const om_factory_t *const *g = f + 1; *g != NULL; g++) {
            if ((*f)->kind != (*g)->kind) {
                continue;
            }
            const char *const *ga = (*g)->aliases;
            ASSERT_TRUE(strcmp((*f)->type, (*g)->type) != 0);
            for (; ga != NULL && *ga != NULL; ga++) {
                ASSERT_TRUE(strcmp((*f)->type, *ga) != 0);
            }
        }
    }
}

int main(void)
{
    OM_RUN(test_every_factory);
    OM_RUN(test_types_are_unique);
    return om_test_summary();
}
