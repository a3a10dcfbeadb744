#include "om_test.h"

int om_test_failed_now;
int om_test_passed, om_test_failed;

int om_test_summary(void)
{
    fprintf(stderr, "%d passed, %d failed\n", om_test_passed, om_test_failed);
    return om_test_failed == 0 ? 0 : 1;
}
