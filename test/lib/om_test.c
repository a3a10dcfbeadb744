#include <stdlib.h>

#include "om.h"
#include "om_test.h"

int om_test_failed_now;
int om_test_passed, om_test_failed;

int om_test_summary(void)
{
    fprintf(stderr, "%d passed, %d failed\n", om_test_passed, om_test_failed);
    return om_test_failed == 0 ? 0 : 1;
}

void om_test_host_init(om_host_t *h, uv_loop_t *loop)
{
    memset(h, 0, sizeof *h);
    h->loop = loop;
    h->intake = om_intake_new(loop);
    if (h->intake == NULL) {
        fprintf(stderr, "om_test_host_init: out of memory\n");
        abort();
    }
}

static void host_closed(void *arg)
{
    *(bool *)arg = true;
}

void om_test_host_close(om_host_t *h)
{
    bool closed = false;
    om_intake_close(h->intake, host_closed, &closed);
    while (!closed && uv_run(h->loop, UV_RUN_ONCE) != 0) {
    }
    h->intake = NULL;
    h->loop = NULL;
}
