/* test_load_copy: the COPY text encoder and the array-literal encoder,
 * byte for byte, including the hostile values a feed can carry. */
#include "copy_encode.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Encodes the JSON text `in` for a column of `kind`; returns the field
 * (new; free with free()) or NULL with the error in err. */
static char *enc(const char *in, enum load_col_kind kind, char *err,
                 size_t err_size)
{
        json_error_t jerr;
        json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        struct sl_buf b;
        char *out = NULL;

        err[0] = '\0';
        if (!v) {
                snprintf(err, err_size, "bad test json: %s", jerr.text);
                return NULL;
        }
        sl_buf_init(&b, 0);
        if (copy_encode_value(&b, v, kind, err, err_size) == 0)
                out = sl_buf_steal(&b, NULL);
        sl_buf_free(&b);
        json_decref(v);
        return out;
}

static const struct {
        const char *in;
        enum load_col_kind kind;
        const char *want; /* NULL: must fail */
        const char *what;
} cases[] = {
    {"\"plain\"", LOAD_COL_SCALAR, "plain", "plain string"},
    {"null", LOAD_COL_SCALAR, "\\N", "null is \\N"},
    {"\"\\\\N\"", LOAD_COL_SCALAR, "\\\\N", "the text \\N stays data"},
    {"\"a\\tb\\nc\\rd\"", LOAD_COL_SCALAR, "a\\tb\\nc\\rd",
     "tab, newline, CR escaped"},
    {"\"back\\\\slash\"", LOAD_COL_SCALAR, "back\\\\slash",
     "backslash doubled"},
    {"\"it's \\\"quoted\\\"\"", LOAD_COL_SCALAR, "it's \"quoted\"",
     "quotes untouched in text"},
    {"\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00\"", LOAD_COL_SCALAR,
     "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
     "unicode passes as UTF-8"},
    {"\"bell\\u0008ff\\u000c\"", LOAD_COL_SCALAR, "bell\\bff\\f",
     "backspace and form feed escaped"},
    {"\"nul\\u0000\"", LOAD_COL_SCALAR, NULL, "NUL byte refused"},
    {"42", LOAD_COL_SCALAR, "42", "integer as text"},
    {"-9007199254740993", LOAD_COL_SCALAR, "-9007199254740993",
     "big integer exact"},
    {"0.1", LOAD_COL_SCALAR, "0.1", "real in shortest form"},
    {"9.8", LOAD_COL_SCALAR, "9.8", "cvss score"},
    {"1e300", LOAD_COL_SCALAR, "1e+300", "large real in shortest form"},
    {"true", LOAD_COL_BOOL, "t", "true is t"},
    {"false", LOAD_COL_BOOL, "f", "false is f"},
    {"[\"a\",\"b c\"]", LOAD_COL_ARRAY, "{\"a\",\"b c\"}", "text array quoted"},
    {"[]", LOAD_COL_ARRAY, "{}", "empty array"},
    {"[\"q\\\"uote\",\"back\\\\slash\"]", LOAD_COL_ARRAY,
     "{\"q\\\\\"uote\",\"back\\\\\\\\slash\"}",
     "array element quote and backslash escaped twice (array, COPY)"},
    {"[\"NULL\",null]", LOAD_COL_ARRAY, "{\"NULL\",NULL}",
     "the string NULL is not a null element"},
    {"[\"tab\\there\",\"{x,y}\"]", LOAD_COL_ARRAY, "{\"tab\\there\",\"{x,y}\"}",
     "tab and braces inside elements"},
    {"[[1,2],[3,4]]", LOAD_COL_ARRAY, "{{1,2},{3,4}}", "nested arrays"},
    {"[true,false]", LOAD_COL_ARRAY, "{t,f}", "boolean elements"},
    {"[\"a\"]", LOAD_COL_JSON, "[\"a\"]", "array for json is JSON"},
    {"\"s\"", LOAD_COL_JSON, "\"s\"", "string for json is quoted JSON"},
    {"{\"k\":\"a\\\\b\\n\"}", LOAD_COL_JSON, "{\"k\":\"a\\\\\\\\b\\\\n\"}",
     "object for json, escaped for COPY"},
    {"{\"k\":1}", LOAD_COL_SCALAR, "{\"k\":1}", "object as JSON text"},
    {"[1]", LOAD_COL_SCALAR, NULL, "array for a scalar column refused"},
    {"true", LOAD_COL_ARRAY, NULL, "boolean for an array refused"},
    {"[\"a\",\"n\\u0000ul\"]", LOAD_COL_ARRAY, NULL,
     "NUL in an array element refused"},
    {"[[[[[[[[1]]]]]]]]", LOAD_COL_ARRAY, NULL, "arrays nested 8 deep refused"},
    {"[[[[[[[1]]]]]]]", LOAD_COL_ARRAY, "{{{{{{{1}}}}}}}", "nested 7 deep"},
    {"{\"k\":\"n\\u0000ul\"}", LOAD_COL_JSON, "{\"k\":\"n\\\\u0000ul\"}",
     "NUL in json stays an escape"},
    {"\"n\\u0000ul\"", LOAD_COL_JSON, "\"n\\\\u0000ul\"",
     "NUL in a json string stays an escape"},
    {"{\"cvssData\":{\"baseScore\":7.3,\"x\":0.1}}", LOAD_COL_JSON,
     "{\"cvssData\":{\"baseScore\":7.3,\"x\":0.1}}",
     "reals in json keep their shortest form (not 7.2999999999999998)"},
    {"[1.0,1e300,-0.0,1.5e-7,0.30000000000000004]", LOAD_COL_JSON,
     "[1.0,1e300,-0.0,1.5e-7,0.30000000000000004]",
     "json reals written as Jansson writes them, digits shortest"},
    {"{\"s\":7.3}", LOAD_COL_SCALAR, "{\"s\":7.3}",
     "object in a scalar column: shortest reals"},
    {"[{\"s\":7.3}]", LOAD_COL_ARRAY, "{\"{\\\\\"s\\\\\":7.3}\"}",
     "object in an array element: shortest reals"},
};

/* copy_check_value() says what copy_encode_value() would, error text and
 * all, without encoding. */
static void check_agrees(const char *in, enum load_col_kind kind,
                         const char *what)
{
        json_error_t jerr;
        json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        char e1[256] = "", e2[256] = "";
        struct sl_buf b;
        int r1, r2;

        sl_buf_init(&b, 0);
        r1 = v ? copy_encode_value(&b, v, kind, e1, sizeof(e1)) : -2;
        r2 = v ? copy_check_value(v, kind, e2, sizeof(e2)) : -3;
        TAP_OK(r1 == r2 && strcmp(e1, e2) == 0,
               "check agrees with encode: %s (%d \"%s\", %d \"%s\")", what, r1,
               e1, r2, e2);
        sl_buf_free(&b);
        json_decref(v);
}

int main(void)
{
        char err[256];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = enc(cases[i].in, cases[i].kind, err, sizeof(err));
                if (cases[i].want) {
                        TAP_STR_EQ(got, cases[i].want, "%s", cases[i].what);
                } else {
                        TAP_OK(got == NULL && err[0] != '\0', "%s (%s)",
                               cases[i].what, err);
                }
                free(got);
                check_agrees(cases[i].in, cases[i].kind, cases[i].what);
        }

        /* copy_escape on raw bytes, and a plain run after an escape */
        {
                struct sl_buf b;
                sl_buf_init(&b, 0);
                TAP_INT_EQ(copy_escape(&b, "x\\y\tz", 5), 0, "escape raw");
                TAP_STR_EQ(b.data, "x\\\\y\\tz", "escape raw bytes");
                TAP_INT_EQ(copy_escape(&b, "a\0b", 3), -1,
                           "escape refuses NUL");
                sl_buf_free(&b);
        }
        /* a capped buffer reports overflow instead of truncating */
        {
                struct sl_buf b;
                json_t *v = json_string("0123456789");
                sl_buf_init(&b, 4);
                TAP_INT_EQ(
                    copy_encode_value(&b, v, LOAD_COL_SCALAR, err, sizeof(err)),
                    -1, "over the cap fails");
                sl_buf_free(&b);
                json_decref(v);
        }
        return TAP_DONE();
}
