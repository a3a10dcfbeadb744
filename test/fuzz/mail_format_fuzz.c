/* mail_format_fuzz.c: the core's mail message builder (om_mail_format), whose subject and
 * bodies are made of span data that anyone who can send spans controls. The input is the
 * subject, the text and the HTML, separated by NUL bytes (a missing part is NULL HTML or an
 * empty text). Checked: every line ends in CRLF with no CR or LF inside and at most 78
 * characters; the header block holds only the headers we write (and folded continuations), so
 * no input can add a header or end the headers early. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const headers[] = {
    "Date: ",       "From: ",         "To: ",           "Subject:",
    "Message-ID: ", "MIME-Version: ", "Content-Type: ", "Content-Transfer-Encoding: "};

static void check_header(const char *line, size_t n)
{
    if (n > 0 && line[0] == ' ') {
        return; /* a folded continuation */
    }
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        if (strncmp(line, headers[i], strlen(headers[i])) == 0) {
            return;
        }
    }
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    const char *subject = in, *text = "", *html = NULL;
    size_t k = strlen(in);
    if (k < size) {
        text = in + k + 1;
        size_t t = strlen(text);
        if (k + 1 + t < size) {
            html = text + t + 1;
        }
    }
    char *to[] = {"ops@example.com", "dba@example.org"};
    om_mail_cfg_t cfg = {.from = "otelmon@example.com", .to = {.n = 2, .items = to}};
    om_mail_msg_t m = {.subject = subject, .text = text, .html = html};
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (om_mail_format(&cfg, &m, 1796000000, 42, &sb) == 0) {
        const char *p = sb.data;
        bool in_headers = true;
        while (*p != '\0') {
            const char *e = strstr(p, "\r\n");
            if (e == NULL || e - p > 78 || memchr(p, '\r', (size_t)(e - p)) != NULL ||
                memchr(p, '\n', (size_t)(e - p)) != NULL) {
                __builtin_trap();
            }
            if (e == p) {
                in_headers = false;
            } else if (in_headers) {
                check_header(p, (size_t)(e - p));
            }
            p = e + 2;
        }
        if (in_headers) {
            __builtin_trap(); /* the body must follow an empty line */
        }
    }
    om_strbuf_free(&sb);
    free(in);
    return 0;
}
