/* text_test.c: UTF-8 validation (src/text.c) at RFC 3629's boundaries, and HTML escaping. */
#include "om.h"
#include "om_test.h"

static void test_utf8_boundaries(void)
{
    static const struct {
        const char *s;
        size_t n, want;
    } cases[] = {
        {"a", 1, 1},
        {"\x7f", 1, 1},
        {"\xc2\x80", 2, 2},         /* U+0080, the first two-byte character */
        {"\xc1\xbf", 2, 0},         /* overlong U+007F */
        {"\xc0\x80", 2, 0},         /* overlong NUL */
        {"\xe0\xa0\x80", 3, 3},     /* U+0800 */
        {"\xe0\x9f\xbf", 3, 0},     /* overlong U+07FF */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
        {"\xed\xa0\x80", 3, 0},     /* U+D800, a surrogate */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, 4}, /* U+10000 */
        {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong U+FFFF */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0}, /* no such lead byte */
        {"\x80", 1, 0},             /* a lone continuation byte */
        {"\xe2\x82\xac", 2, 0},     /* cut short by n */
        {"\xe2\x82", 4, 0},         /* cut short by the NUL, with n = 4 */
        {"\xe2\x28\xa1", 3, 0},     /* a bad second byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (om_utf8_seq(cases[i].s, cases[i].n) != cases[i].want) {
            OM__FAIL("case %zu: om_utf8_seq gave %zu, want %zu", i,
                     om_utf8_seq(cases[i].s, cases[i].n), cases[i].want);
        }
    }
    ASSERT_TRUE(om_utf8_valid("h\xc3\xa9llo \xe2\x82\xac", 10));
    ASSERT_TRUE(!om_utf8_valid("h\xc3\xa9llo \xe2\x82", 9));
    ASSERT_TRUE(om_utf8_valid("", 0));
}

static void test_html_escaping(void)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    const char in[] = "<a href=\"x\">Tom & Jerry's</a>\x01\n\t\xff\xc3\xa9\x7f";
    om_strbuf_html(&sb, in, sizeof in - 1);
    ASSERT_EQ_STR(om_strbuf_str(&sb), "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt; "
                                      "\n\t\xef\xbf\xbd\xc3\xa9 ");
    om_strbuf_reset(&sb);
    om_strbuf_html(&sb, "ab\0cd", 5); /* a NUL is a control character, not an end */
    ASSERT_EQ_STR(om_strbuf_str(&sb), "ab cd");
    om_strbuf_free(&sb);
}

int main(void)
{
    OM_RUN(test_utf8_boundaries);
    OM_RUN(test_html_escaping);
    return om_test_summary();
}
