/* config_fuzz.c: the YAML config loader and the field-table engine on arbitrary input.
 *
 * The input is loaded as one config file and a small table shaped like a receiver's config
 * is applied to its root and to every top-level value, which drives the unit parsers too.
 * A second pass makes one allocation fail (chosen from the input) to walk the ENOMEM paths.
 * Everything is freed; the sanitizers and libFuzzer's leak check do the asserting. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

typedef struct fz_section {
    char *endpoint;
    int64_t max_mib;
    uint64_t buffer;
} fz_section_t;

typedef struct fz_cfg {
    bool enabled;
    int64_t count;
    double ratio;
    int64_t timeout;
    uint64_t limit;
    char *name;
    int mode;
    fz_section_t grpc;
    bool grpc_present;
    om_strmap_t headers;
    om_strlist_t include;
} fz_cfg_t;

static const char *const fz_modes[] = {"none", "gzip", "zstd", NULL};

static const om_field_t fz_section_fields[] = {
    {.key = "endpoint",
     .type = OM_F_ENDPOINT,
     .offset = offsetof(fz_section_t, endpoint),
     .def = "localhost:4317"},
    {.key = "max_recv_msg_size_mib",
     .type = OM_F_INT,
     .offset = offsetof(fz_section_t, max_mib),
     .def = "4",
     .min = 1,
     .max = 1024},
    {.key = "read_buffer_size",
     .type = OM_F_SIZE,
     .offset = offsetof(fz_section_t, buffer),
     .def = "512KiB"},
    {.key = NULL},
};

static const om_field_t fz_fields[] = {
    {.key = "enabled", .type = OM_F_BOOL, .offset = offsetof(fz_cfg_t, enabled), .def = "true"},
    {.key = "count",
     .type = OM_F_INT,
     .offset = offsetof(fz_cfg_t, count),
     .def = "8192",
     .min = 0,
     .max = 1e9},
    {.key = "ratio", .type = OM_F_DOUBLE, .offset = offsetof(fz_cfg_t, ratio), .min = 0, .max = 1},
    {.key = "timeout",
     .type = OM_F_DURATION,
     .offset = offsetof(fz_cfg_t, timeout),
     .def = "200ms"},
    {.key = "limit", .type = OM_F_SIZE, .offset = offsetof(fz_cfg_t, limit), .def = "4MiB"},
    {.key = "name",
     .type = OM_F_STRING,
     .offset = offsetof(fz_cfg_t, name),
     .flags = OM_FF_REQUIRED},
    {.key = "mode", .type = OM_F_ENUM, .offset = offsetof(fz_cfg_t, mode), .choices = fz_modes},
    {.key = "grpc",
     .type = OM_F_SECTION,
     .offset = offsetof(fz_cfg_t, grpc),
     .fields = fz_section_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(fz_cfg_t, grpc_present)},
    {.key = "headers", .type = OM_F_STRMAP, .offset = offsetof(fz_cfg_t, headers), .def = "{a: b}"},
    {.key = "include", .type = OM_F_STRLIST, .offset = offsetof(fz_cfg_t, include)},
    {.key = "balancer_name", .type = OM_F_IGNORED},
    {.key = NULL},
};

static void run_once(const uint8_t *data, size_t size)
{
    om_config_t *c = NULL;
    om_diags_t d = {0};
    if (om_config_load_string("fuzz.yaml", (const char *)data, size, &c, &d) == 0) {
        fz_cfg_t cfg = {0};
        om_fields_apply(fz_fields, &cfg, c->root, "", &d);
        /* Every top-level value as a component node, like receivers::otlp would be. */
        for (size_t i = 0; i < c->root->n; i++) {
            om_fields_apply(fz_fields, &cfg, c->root->values[i], c->root->keys[i]->str, &d);
        }
        om_fields_free(fz_fields, &cfg);
    }
    om_config_free(c);
    om_diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    om_log_set_level(OM_LOG_NONE);
    run_once(data, size);
    if (size > 0) {
        om_alloc_fail_after(1 + data[size - 1] % 64u);
        run_once(data, size);
        om_alloc_fail_after(0);
    }
    return 0;
}
