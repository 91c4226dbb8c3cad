/* Unit tests of fetch_xml: the XML-to-JSON conversion rules, record
 * selection by element path, the next URL, and the refusals (entities,
 * external DTDs, depth, size, encodings); SOAP: faults read from answers,
 * envelopes' XML-escaped substitution, and the soap section's lint. */
#include "fetch_policy.h"
#include "fetch_source.h"
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

static void fault(const char *name, const char *xml, int want,
                  const char *want_code, const char *want_reason)
{
        char code[128], reason[256];
        int rc = fetch_xml_soap_fault(xml, strlen(xml), code, sizeof(code),
                                      reason, sizeof(reason));

        TAP_INT_EQ(rc, want, "fault %s: %d", name, want);
        if (want != 1)
                return;
        TAP_STR_EQ(code, want_code, "fault %s: code", name);
        TAP_STR_EQ(reason, want_reason, "fault %s: reason", name);
}

#define ENV11                                                                  \
        "<soapenv:Envelope "                                                   \
        "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
#define ENV12                                                                  \
        "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"

static void test_soap_faults(void)
{
        size_t n;
        const char *l;

        fault("1.1 with detail",
              "<?xml version=\"1.0\"?>" ENV11 "<soapenv:Body><soapenv:Fault>"
              "<faultcode>sf:INVALID_QUERY_LOCATOR</faultcode>"
              "<faultstring>INVALID_QUERY_LOCATOR: invalid query "
              "locator</faultstring><detail><x>1</x></detail>"
              "</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
              1, "sf:INVALID_QUERY_LOCATOR",
              "INVALID_QUERY_LOCATOR: invalid query locator");
        fault("1.1 after a Header, text trimmed, &amp; read",
              ENV11 "<soapenv:Header><h><faultcode>no</faultcode></h>"
                    "</soapenv:Header><soapenv:Body><soapenv:Fault>"
                    "<faultcode>\n  soapenv:Server \n</faultcode>"
                    "<faultstring>a &amp; b</faultstring></soapenv:Fault>"
                    "</soapenv:Body></soapenv:Envelope>",
              1, "soapenv:Server", "a & b");
        fault("1.2 with a subcode",
              ENV12 "<env:Body><env:Fault><env:Code><env:Value>env:Receiver"
                    "</env:Value><env:Subcode><env:Value>m:Busy</env:Value>"
                    "</env:Subcode></env:Code><env:Reason><env:Text "
                    "xml:lang=\"en\">try later</env:Text><env:Text "
                    "xml:lang=\"fr\">plus tard</env:Text></env:Reason>"
                    "</env:Fault></env:Body></env:Envelope>",
              1, "env:Receiver / m:Busy", "try later");
        fault("an answer",
              ENV11 "<soapenv:Body><queryResponse><faultcode>x"
                    "</faultcode></queryResponse></soapenv:Body>"
                    "</soapenv:Envelope>",
              0, NULL, NULL);
        fault("not SOAP", "<Fault><faultcode>x</faultcode></Fault>", 0, NULL,
              NULL);
        fault("not XML", "{\"a\": 1}", -1, NULL, NULL);
        fault("empty", "", -1, NULL, NULL);
        fault("entities refused",
              "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" ENV11
              "<soapenv:Body><soapenv:Fault><faultcode>&e;</faultcode>"
              "</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
              -1, NULL, NULL);
        l = fetch_xml_fault_local("soapenv:Server", &n);
        TAP_OK(n == 6 && strncmp(l, "Server", n) == 0, "local: Server");
        l = fetch_xml_fault_local("env:Receiver / m:Busy", &n);
        TAP_OK(n == 8 && strncmp(l, "Receiver", n) == 0, "local: Receiver");
        l = fetch_xml_fault_local("Client", &n);
        TAP_OK(n == 6 && strncmp(l, "Client", n) == 0, "local: no prefix");
}

static void test_soap_template(void)
{
        struct fetch_vars v;
        char err[256];
        char *t;
        int secret = 0;

        memset(&v, 0, sizeof(v));
        fetch_vars_set(&v, "next", "01g-2000 & <x> \"q\" 'a'");
        setenv("SLUICE_TEST_SOAP_SECRET", "k<&>y", 1);
        t = fetch_template_xml("<a>${next}</a><s>${env:SLUICE_TEST_SOAP_"
                               "SECRET}</s>",
                               &v, &secret, err, sizeof(err));
        TAP_STR_EQ(t,
                   "<a>01g-2000 &amp; &lt;x&gt; &quot;q&quot; &apos;a&apos;"
                   "</a><s>k&lt;&amp;&gt;y</s>",
                   "template: substitutions XML-escaped");
        TAP_INT_EQ(secret, 1, "template: a secret is marked");
        free(t);
        t = fetch_template("<a>${next}</a>", &v, NULL, err, sizeof(err));
        TAP_STR_EQ(t, "<a>01g-2000 & <x> \"q\" 'a'</a>",
                   "template: plain templates unchanged");
        free(t);
}

static void lint(const char *name, const char *soap_and_paging,
                 const char *want)
{
        char *text = NULL, *errs = NULL;
        struct fetch_source *src;

        text = malloc(strlen(soap_and_paging) + 512);
        snprintf(text, strlen(soap_and_paging) + 512,
                 "{\"name\": \"s\", \"base_url\": \"http://x\", "
                 "%s\"format\": \"xml\", \"records\": \"$.records\", %s}",
                 strstr(soap_and_paging, "\"request\"")
                     ? ""
                     : "\"request\": {\"path\": \"/soap\"}, ",
                 soap_and_paging);
        src = fetch_source_loadb("s.json", text, strlen(text), &errs);
        for (char *p = errs; p && *p; p++)
                if (*p == '\n')
                        *p = ' '; /* one TAP line */
        if (!want) {
                TAP_OK(src != NULL, "lint %s: ok (%s)", name, errs ? errs : "");
        } else {
                TAP_OK(src == NULL && errs && strstr(errs, want),
                       "lint %s: says '%s' (%s)", name, want,
                       errs ? errs : "accepted");
        }
        if (src && !want) {
                TAP_STR_EQ(src->method, "POST", "lint %s: POST", name);
        }
        fetch_source_destroy(src);
        free(errs);
        free(text);
}

#define X_REC "\"xml\": {\"records\": \"/E/B/*/r\""

static void test_soap_lint(void)
{
        lint("cursor",
             X_REC ", \"next\": \"/E/B/*/l\"}, \"soap\": "
                   "{\"envelope\": \"<e/>\", \"next_envelope\": "
                   "\"<e>${next}</e>\"}, \"paging\": {\"style\": "
                   "\"cursor\"}",
             NULL);
        lint("none, 1.2",
             X_REC "}, \"soap\": {\"version\": \"1.2\", "
                   "\"action\": \"urn:a\", \"envelope\": \"<e/>\"}",
             NULL);
        lint("no ${next}",
             X_REC ", \"next\": \"/E/B/*/l\"}, \"soap\": "
                   "{\"envelope\": \"<e/>\"}, \"paging\": "
                   "{\"style\": \"cursor\"}",
             "must hold ${next}");
        lint("cursor without xml.next",
             X_REC "}, \"soap\": {\"envelope\": \"<e>${next}</e>\"}, "
                   "\"paging\": {\"style\": \"cursor\"}",
             "needs xml.next");
        lint("version",
             X_REC "}, \"soap\": {\"version\": \"2\", "
                   "\"envelope\": \"<e/>\"}",
             "must be \"1.1\" or \"1.2\"");
        lint("no envelope", X_REC "}, \"soap\": {}", "envelope");
        lint("a body too",
             X_REC "}, \"soap\": {\"envelope\": \"<e/>\"}, \"request\": "
                   "{\"path\": \"/\", \"body\": \"x\"}",
             "no request.body");
        lint("next_url",
             X_REC ", \"next\": \"/E/B/*/l\"}, \"soap\": "
                   "{\"envelope\": \"<e/>\"}, \"paging\": "
                   "{\"style\": \"next_url\"}",
             "with soap: none, or cursor");
        lint("prefixed retry fault",
             X_REC "}, \"soap\": {\"envelope\": \"<e/>\", "
                   "\"retry_faults\": [\"soapenv:Server\"]}",
             "local name");
}

struct pages {
        char all[4096]; /* the pages, one a line */
        long n, nrec;
        int fail_at; /* emit fails at this page (1-based), 0: never */
};

static int collect(const char *page, size_t len, long nrec, void *opaque,
                   char *errstr, size_t errstr_size)
{
        struct pages *p = opaque;
        size_t at = strlen(p->all);

        p->n++;
        p->nrec += nrec;
        if (p->fail_at && p->n == p->fail_at) {
                snprintf(errstr, errstr_size, "sink says no");
                return -1;
        }
        snprintf(p->all + at, sizeof(p->all) - at, "%.*s\n", (int)len, page);
        return 0;
}

/* Streams xml through a temporary file. */
static int stream(const char *xml, size_t page_bytes, struct pages *p,
                  long *npages, char *err, size_t err_size)
{
        struct fetch_xml_opts o = opts("/r/h", "/r/next");
        struct fetch_xml_sink sink = {page_bytes, collect, p};
        FILE *fp = tmpfile();
        int rc;

        fputs(xml, fp);
        fflush(fp);
        rewind(fp);
        err[0] = '\0';
        rc = fetch_xml_stream(&o, fileno(fp), &sink, npages, err, err_size);
        fclose(fp);
        return rc;
}

static void test_stream(void)
{
        struct pages p;
        char err[256];
        long n = 0;
        int rc;

        memset(&p, 0, sizeof(p));
        rc = stream("<r><h>1</h><h a=\"x\">2</h><h><tag>t</tag></h>"
                    "<next>u</next></r>",
                    15, &p, &n, err, sizeof(err));
        TAP_INT_EQ(rc, FETCH_XML_OK, "stream: converted (%s)", err);
        TAP_INT_EQ(n, 3, "stream: a page each time one reaches 15 bytes");
        TAP_STR_EQ(p.all,
                   "{\"records\":[\"1\"]}\n"
                   "{\"records\":[{\"@a\":\"x\",\"#text\":\"2\"}]}\n"
                   "{\"records\":[{\"tag\":[\"t\"]}]}\n",
                   "stream: the pages, records whole, no next");
        TAP_INT_EQ(p.nrec, 3, "stream: records counted");

        memset(&p, 0, sizeof(p));
        rc = stream("<r><h>1</h><h>2</h></r>", 1 << 20, &p, &n, err,
                    sizeof(err));
        TAP_OK(rc == FETCH_XML_OK && n == 1 &&
                   strcmp(p.all, "{\"records\":[\"1\",\"2\"]}\n") == 0,
               "stream: a small document is one page");

        memset(&p, 0, sizeof(p));
        rc = stream("<r></r>", 16, &p, &n, err, sizeof(err));
        TAP_OK(rc == FETCH_XML_OK && n == 1 &&
                   strcmp(p.all, "{\"records\":[]}\n") == 0,
               "stream: no records, one empty page");

        memset(&p, 0, sizeof(p));
        p.fail_at = 2;
        rc = stream("<r><h>1</h><h>2</h><h>3</h></r>", 4, &p, &n, err,
                    sizeof(err));
        TAP_INT_EQ(rc, FETCH_XML_SINK, "stream: the sink's failure stops it");
        TAP_STR_EQ(err, "sink says no", "stream: with the sink's error");
        TAP_INT_EQ(p.n, 2, "stream: nothing read past it");

        memset(&p, 0, sizeof(p));
        rc = stream("<!DOCTYPE r [<!ENTITY e \"x\">]><r><h>&e;</h></r>", 4, &p,
                    &n, err, sizeof(err));
        TAP_OK(rc == FETCH_XML_REFUSED && p.n == 0 &&
                   strstr(err, "declares entities"),
               "stream: entities refused before any page (%s)", err);

        memset(&p, 0, sizeof(p));
        rc = stream("<r><h>1</h><h>2</h><h>3", 4, &p, &n, err, sizeof(err));
        TAP_OK(rc == FETCH_XML_MALFORMED && p.n == 2 &&
                   strstr(err, "not well-formed"),
               "stream: truncated: malformed, the pages before it handed "
               "over (%ld, %s)",
               p.n, err);
}

int main(void)
{
        test_rules();
        test_refusals();
        test_paths();
        test_soap_faults();
        test_soap_template();
        test_soap_lint();
        test_stream();
        printf("1..%d\n", tap_count);
        return tap_failed ? 1 : 0;
}
