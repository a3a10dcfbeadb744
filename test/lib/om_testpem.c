/* om_testpem.c: the fixed test PKI (om_testpem.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "om_testpem.h"

/* Every name written, for om_testpem_files_remove (the first 32 distinct ones). */
static char written[32][128];
static int n_written;

static void remember(const char *path)
{
    for (int i = 0; i < n_written; i++) {
        if (strcmp(written[i], path) == 0) {
            return;
        }
    }
    if (n_written < 32) {
        snprintf(written[n_written++], sizeof written[0], "%s", path);
    }
}

char *om_testpem_file(const char *name, const char *text)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "/tmp/om-testpem-%d-%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
        remember(p);
    }
    return p;
}

void om_testpem_files_remove(void)
{
    for (int i = 0; i < n_written; i++) {
        unlink(written[i]);
    }
    n_written = 0;
}

const char om_test_ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBizCCATGgAwIBAgIUTa1TYK0WThp5m+mvh3/dJdlB7R0wCgYIKoZIzj0EAwIw\n"
                              "GjEYMBYGA1UEAwwPT3RlbE1vbiB0ZXN0IENBMCAXDTI2MTEyNDA2MzkzMFoYDzIx\n"
                              "MjYxMDMxMDYzOTMwWjAaMRgwFgYDVQQDDA9PdGVsTW9uIHRlc3QgQ0EwWTATBgcq\n"
                              "hkjOPQIBBggqhkjOPQMBBwNCAAQxIDXlQy5s6HpIJUg/+ic9wPF/7qJ14QOGikrS\n"
                              "UnwCK64DQYuMUnv8bqBgAqWfeV3Vdokltqyl6YDmYAlDSzhGo1MwUTAdBgNVHQ4E\n"
                              "FgQUj5f70zQKBHyTI35sKKMD3Bk+u4kwHwYDVR0jBBgwFoAUj5f70zQKBHyTI35s\n"
                              "KKMD3Bk+u4kwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAriqN\n"
                              "2AJ/xmoUj4GA8J1f3nEysf9fm1PxzkiFwq4IyUICIAY0/S55L89C4/O3wsrkUGon\n"
                              "fIhrfl9Yz+fghxktJQxS\n"
                              "-----END CERTIFICATE-----\n";

const char om_test_server_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBwjCCAWigAwIBAgIUTESP2Ufg8MUv3bNEhuK1gcCBdD0wCgYIKoZIzj0EAwIw\n"
    "GjEYMBYGA1UEAwwPT3RlbE1vbiB0ZXN0IENBMCAXDTI2MTEyNDA2MzkzMFoYDzIx\n"
    "MjYxMDMxMDYzOTMwWjAfMR0wGwYDVQQDDBRvdGVsbW9uLXRlc3QuZXhhbXBsZTBZ\n"
    "MBMGByqGSM49AgEGCCqGSM49AwEHA0IABMJFtKdIO+AGGV8sxufjuqiIZCgznHoV\n"
    "adxtxauRIWFtHU2g0XaCxAkpVs0dKDJKchKIl8hhv5OGhlT6Hjk+WFujgYQwgYEw\n"
    "KgYDVR0RBCMwIYIUb3RlbG1vbi10ZXN0LmV4YW1wbGWCCWxvY2FsaG9zdDATBgNV\n"
    "HSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUYOsZ3olKdgBNS1uPsmC0nWa1wTUw\n"
    "HwYDVR0jBBgwFoAUj5f70zQKBHyTI35sKKMD3Bk+u4kwCgYIKoZIzj0EAwIDSAAw\n"
    "RQIgEqWEfaL0OIv0MmTd1u1Q2E/SVXzThLPsiTq9VzM6FR0CIQC+qDaet+q8+kHY\n"
    "Jdqe4GwU9nigxKR0hd7k39j6XNEeqg==\n"
    "-----END CERTIFICATE-----\n";

const char om_test_server_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUF/skN4RCWSbHRz/\n"
    "RDCSgQC95FNarGHiZpGeVZe/ZVuhRANCAATCRbSnSDvgBhlfLMbn47qoiGQoM5x6\n"
    "FWncbcWrkSFhbR1NoNF2gsQJKVbNHSgySnISiJfIYb+ThoZU+h45Plhb\n"
    "-----END PRIVATE KEY-----\n";

const char om_test_client_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBlDCCATmgAwIBAgIUTESP2Ufg8MUv3bNEhuK1gcCBdD4wCgYIKoZIzj0EAwIw\n"
    "GjEYMBYGA1UEAwwPT3RlbE1vbiB0ZXN0IENBMCAXDTI2MTEyNDA2MzkzMFoYDzIx\n"
    "MjYxMDMxMDYzOTMwWjAeMRwwGgYDVQQDDBNvdGVsbW9uLXRlc3QtY2xpZW50MFkw\n"
    "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEj/mARCvRAvs12gcny6N+K39IMcodxvLe\n"
    "ovZEuWOIKcZgGc56TJ1bEjZsxSXxalgUjfm9geyYYuqMiox8HlOHpqNXMFUwEwYD\n"
    "VR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYEFG1rvjUtPSNBX1NqvasdTBtndZ3p\n"
    "MB8GA1UdIwQYMBaAFI+X+9M0CgR8kyN+bCijA9wZPruJMAoGCCqGSM49BAMCA0kA\n"
    "MEYCIQD3p12OQ2yuDWr3nZmmXK/BSMhE2xKGidGRsSFWqIlyUQIhAJ8aaXWx9VH5\n"
    "axXpOmJRtgbuD7EZTC6hXpVlCWg8E1+Q\n"
    "-----END CERTIFICATE-----\n";

const char om_test_client_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6uIQ+ZIeChkwenhj\n"
    "U+Az+F9LZhn/qYUagXvGg9WUF3mhRANCAASP+YBEK9EC+zXaByfLo34rf0gxyh3G\n"
    "8t6i9kS5Y4gpxmAZznpMnVsSNmzFJfFqWBSN+b2B7Jhi6oyKjHweU4em\n"
    "-----END PRIVATE KEY-----\n";
