/* file.h: private to exporters/file. */
#ifndef EXP_FILE_H
#define EXP_FILE_H

#include "om.h"

enum { EXP_FILE_JSON = 0, EXP_FILE_PROTO = 1 };

typedef struct exp_file_cfg {
    char *path;
    int format; /* EXP_FILE_JSON or EXP_FILE_PROTO */
    bool append;
    int64_t flush_interval; /* ns; accepted, see file_exporter.c */
} exp_file_cfg_t;

/* The most bytes encoded and not yet written before consume refuses (64 MiB by default).
 * Tests lower it. Loop thread. */
void exp_file_set_queue_limit(void *self, size_t bytes);

#endif
