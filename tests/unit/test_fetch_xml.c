/* Unit tests of fetch_xml: the XML-to-JSON conversion rules, record
 * selection by element path, the next URL, and the refusals (entities,
 * external DTDs, depth, size, encodings). */
#include "fetch_xml.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static const char *const arrays[] = {"DETECTION", "tag"};

static struct fetch_xml_opts opts(const char *records, const char *next)
{
        struct fetch_xml_opts o;

        memset(&o, 0, sizeof(o));
        o.records = records;
        o.next = next;
        o.arrays = arrays;
        o.arrays_n = 2;
        o.max_depth = 16;
        o.max_bytes = 1 << 20;
        return o;
}

/* Converts xml; returns the code, the page in *page (or the error). */
static int conv(const struct fetch_xml_opts *o, const char *xml, char **page,
                char *err, size_t err_size)
{
        size_t len = 0;

        err[0] = '\0';
        return fetch_xml_page(o, xml, strlen(xml), page, &len, err, err_size);
}

static void check(const char *name, const char *records, const char *next,
                  const char *xml, const char *want)
{
        struct fetch_xml_opts o = opts(records, next);
        char *page = NULL;
        char err[512];
        int rc = conv(&o, xml, &page, err, sizeof(err));

        TAP_INT_EQ(rc, FETCH_XML_OK, "%s: converted", name);
        if (rc != FETCH_XML_OK)
                printf("#   error: %s\n", err);
        TAP_STR_EQ(page, want, "%s: page", name);
        free(page);
}

static void refused(const char *name, int want_rc, const char *xml,
                    const char *want_in_error)
{
        struct fetch_xml_opts o = opts("/a/b", NULL);
        char *page = NULL;
        char err[512];
        int rc = conv(&o, xml, &page, err, sizeof(err));

        TAP_INT_EQ(rc, want_rc, "%s: refused", name);
        TAP_OK(page == NULL, "%s: no page", name);
        TAP_OK(strstr(err, want_in_error) != NULL, "%s: error says \"%s\"",
               name, want_in_error);
        if (!strstr(err, want_in_error))
                printf("#   error: %s\n", err);
        free(page);
}

static void test_rules(void)
{
        check("text only", "/r/h", NULL,
              "<r><h><ID>1</ID><IP>10.0.0.1</IP></h></r>",
              "{\"records\":[{\"ID\":\"1\",\"IP\":\"10.0.0.1\"}]}");
        check("attributes and text", "/r/h", NULL,
              "<r><h id=\"7\"><n lang=\"en\">x &amp; y</n><e/></h></r>",
              "{\"records\":[{\"@id\":\"7\",\"n\":{\"@lang\":\"en\","
              "\"#text\":\"x & y\"},\"e\":\"\"}]}");
        check("repeated elements", "/r/h", NULL,
              "<r><h><c>1</c><c>2</c><d>x</d><c>3</c></h></r>",
              "{\"records\":[{\"c\":[\"1\",\"2\",\"3\"],\"d\":\"x\"}]}");
        check("always-array elements stay arrays", "/r/h", NULL,
              "<r><h><L><DETECTION><QID>1</QID></DETECTION></L>"
              "<tag name=\"a\">v</tag></h></r>",
              "{\"records\":[{\"L\":{\"DETECTION\":[{\"QID\":\"1\"}]},"
              "\"tag\":[{\"@name\":\"a\",\"#text\":\"v\"}]}]}");
        check("CDATA, comments, white space between elements", "/r/h", NULL,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n"
              "<r>\n  <h>\n    <OS><![CDATA[Windows <2008>]]></OS>\n"
              "    <!-- x -->\n  </h>\n</r>\n",
              "{\"records\":[{\"OS\":\"Windows <2008>\"}]}");
        check("text kept as is", "/r/h", NULL, "<r><h><p>\n a\n</p></h></r>",
              "{\"records\":[{\"p\":\"\\n a\\n\"}]}");
        check("several records, others ignored", "/r/l/h", NULL,
              "<r><x><h>no</h></x><l><h>1</h><h>2</h></l><h>no</h></r>",
              "{\"records\":[\"1\",\"2\"]}");
        check("wildcard step", "/r/*/h", NULL,
              "<r><a><h>1</h></a><b><h>2</h></b></r>",
              "{\"records\":[\"1\",\"2\"]}");
        check("no records", "/r/h", NULL, "<r/>", "{\"records\":[]}");
        check("next URL", "/O/R/L/H", "/O/R/W/URL",
              "<O><R><L><H><ID>1</ID></H></L><W><CODE>1980</CODE><URL>"
              "<![CDATA[ https://q/api?action=list&id_min=2 ]]></URL></W>"
              "</R></O>",
              "{\"records\":[{\"ID\":\"1\"}],\"next\":"
              "\"https://q/api?action=list&id_min=2\"}");
        check("an empty next is no next", "/r/h", "/r/u",
              "<r><h>1</h><u> </u></r>", "{\"records\":[\"1\"]}");
        check("namespaces: qualified names, no xmlns members", "/s:E/s:B/m",
              NULL,
              "<s:E xmlns:s=\"urn:s\"><s:B><m xmlns=\"urn:m\" a=\"1\">"
              "t</m></s:B></s:E>",
              "{\"records\":[{\"@a\":\"1\",\"#text\":\"t\"}]}");
        check("an external DTD is not loaded", "/r/h", NULL,
              "<?xml version=\"1.0\"?>\n<!DOCTYPE r SYSTEM "
              "\"https://qualysapi.qualys.com/x.dtd\">\n<r><h>1</h></r>",
              "{\"records\":[\"1\"]}");
        check("UTF-8 text", "/r/h", NULL, "<r><h>caf\xc3\xa9</h></r>",
              "{\"records\":[\"caf\xc3\xa9\"]}");
}

static void test_refusals(void)
{
        refused("XXE file", FETCH_XML_REFUSED,
                "<?xml version=\"1.0\"?>\n<!DOCTYPE a [\n<!ENTITY x SYSTEM "
                "\"file:///etc/passwd\">\n]>\n<a><b>&x;</b></a>",
                "declares entities");
        refused("billion laughs", FETCH_XML_REFUSED,
                "<?xml version=\"1.0\"?>\n<!DOCTYPE a [\n"
                "<!ENTITY l \"lol\">\n"
                "<!ENTITY l1 \"&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;\">\n"
                "<!ENTITY l2 \"&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;\">\n"
                "]>\n<a><b>&l2;</b></a>",
                "declares entities");
        refused("parameter entity", FETCH_XML_REFUSED,
                "<!DOCTYPE a [<!ENTITY % p SYSTEM \"http://x/e.dtd\"> %p;]>"
                "<a/>",
                "declares entities");
        refused("entity after a comment in the subset", FETCH_XML_REFUSED,
                "<!DOCTYPE a [<!-- ] --><!ENTITY x \"y\">]><a>&x;</a>",
                "declares entities");
        refused("undeclared entity", FETCH_XML_REFUSED, "<a><b>&x;</b></a>",
                "entit");
        refused("UTF-16", FETCH_XML_REFUSED, "\xff\xfe<\0a\0/\0>\0", "UTF-16");
        refused("other encodings", FETCH_XML_REFUSED,
                "<?xml version=\"1.0\" encoding=\"UTF-7\"?><a/>",
                "encoding \"UTF-7\"");
        refused("deep nesting", FETCH_XML_REFUSED,
                "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
                "</a></a></a></a></a></a></a></a></a></a></a></a></a></a>"
                "</a></a></a></a>",
                "limits.max_depth (16)");
        refused("not well-formed", FETCH_XML_MALFORMED, "<a><b>1</a>",
                "not well-formed");
        refused("truncated", FETCH_XML_MALFORMED, "<a><b>1</b><b>2",
                "not well-formed");
        refused("empty", FETCH_XML_MALFORMED, "", "not well-formed");
        refused("JSON is not XML", FETCH_XML_MALFORMED, "{\"a\": 1}",
                "not well-formed");
        {
                /* far deeper than libxml2's own limit (256) */
                size_t n = 5000;
                char *deep = malloc(n * 7 + 1);
                size_t k = 0;
                for (size_t i = 0; i < n; i++) {
                        memcpy(deep + k, "<a>", 3);
                        k += 3;
                }
                for (size_t i = 0; i < n; i++) {
                        memcpy(deep + k, "</a>", 4);
                        k += 4;
                }
                deep[k] = '\0';
                refused("5000 levels", FETCH_XML_REFUSED, deep,
                        "limits.max_depth");
                free(deep);
        }
        {
                struct fetch_xml_opts o = opts("/r/h", NULL);
                char *page = NULL;
                char err[512];
                o.max_bytes = 64;
                TAP_INT_EQ(conv(&o,
                                "<r><h>0123456789</h><h>0123456789</h>"
                                "<h>0123456789</h><h>0123456789</h>"
                                "<h>0123456789</h></r>",
                                &page, err, sizeof(err)),
                           FETCH_XML_REFUSED, "size: page over max_bytes");
                TAP_OK(strstr(err, "larger than limits.max_page_bytes (64"),
                       "size: error names the limit (%s)", err);
                free(page);
        }
}

static void test_paths(void)
{
        char err[256];

        TAP_INT_EQ(fetch_xml_path_check("/A/B/C", err, sizeof(err)), 0,
                   "path: /A/B/C");
        TAP_INT_EQ(fetch_xml_path_check("/A/*/C", err, sizeof(err)), 0,
                   "path: wildcard");
        TAP_INT_EQ(fetch_xml_path_check("A/B", err, sizeof(err)), -1,
                   "path: relative refused");
        TAP_INT_EQ(fetch_xml_path_check("/A//B", err, sizeof(err)), -1,
                   "path: empty step refused");
        TAP_INT_EQ(fetch_xml_path_check("/", err, sizeof(err)), -1,
                   "path: / alone refused");
        TAP_INT_EQ(fetch_xml_path_check("/A/@b", err, sizeof(err)), -1,
                   "path: attribute step refused");
}

int main(void)
{
        test_rules();
        test_refusals();
        test_paths();
        printf("1..%d\n", tap_count);
        return tap_failed ? 1 : 0;
}
