/* fetch_xml: XML pages to JSON pages, streamed by libxml2's xmlTextReader.
 *
 * Safety. The parser never touches the network or a file: XML_PARSE_NONET,
 * no XML_PARSE_NOENT / DTDLOAD / DTDATTR / DTDVALID (no external subset,
 * no entity substitution), and the process's external entity loader is one
 * that loads nothing. A document that declares entities is refused before
 * libxml2 reads it (the prolog is checked here first: its DOCTYPE's
 * internal subset holds no <!ENTITY>, and its encoding keeps markup in
 * ASCII bytes so that what is checked is what the parser reads), again
 * when the reader meets the DTD, and any entity reference left in the
 * content is refused: nothing is ever expanded. Depth is bounded by the
 * source's limits.max_depth, the JSON page by max_bytes. */
#include "fetch_xml.h"
#include "sl_util.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <pthread.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- the process-wide parser setup ---- */

static xmlParserInputPtr load_nothing(const char *url, const char *id,
                                      xmlParserCtxtPtr ctxt)
{
        (void)url;
        (void)id;
        (void)ctxt;
        return NULL; /* every external entity or DTD fails to load */
}

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup(void)
{
        xmlInitParser();
        xmlSetExternalEntityLoader(load_nothing);
}

/* ---- element paths ---- */

int fetch_xml_path_check(const char *path, char *errstr, size_t errstr_size)
{
        const char *p = path;

        if (!p || p[0] != '/' || p[1] == '\0') {
                snprintf(errstr, errstr_size,
                         "an element path starts with / and names at least "
                         "one element (\"/A/B\")");
                return -1;
        }
        for (; *p; p++) {
                if (*p == '/' && (p[1] == '/' || p[1] == '\0')) {
                        snprintf(errstr, errstr_size,
                                 "empty step in element path \"%s\"", path);
                        return -1;
                }
                if (*p == ' ' || *p == '[' || *p == '@' || *p == '\t') {
                        snprintf(errstr, errstr_size,
                                 "element path \"%s\": steps are element "
                                 "names or *",
                                 path);
                        return -1;
                }
        }
        return 0;
}

struct steps {
        char *text;  /* owned: the path, its slashes made NULs */
        char **name; /* owned array of pointers into text */
        size_t n;
};

static void steps_parse(struct steps *s, const char *path)
{
        size_t len = strlen(path);

        memset(s, 0, sizeof(*s));
        s->text = sl_strdup(path);
        s->name = sl_calloc(len + 1, sizeof(*s->name));
        for (size_t i = 0; i < len; i++) {
                if (s->text[i] != '/')
                        continue;
                s->text[i] = '\0';
                s->name[s->n++] = s->text + i + 1;
        }
}

static void steps_free(struct steps *s)
{
        free(s->text);
        free(s->name);
        memset(s, 0, sizeof(*s));
}

/* Whether the open elements path[0..depth] are exactly the steps. */
static int steps_match(const struct steps *s, const char *const *path,
                       int depth)
{
        if (s->n == 0 || (size_t)depth + 1 != s->n)
                return 0;
        for (int i = 0; i <= depth; i++)
                if (strcmp(s->name[i], "*") != 0 &&
                    strcmp(s->name[i], path[i]) != 0)
                        return 0;
        return 1;
}

/* ---- the prolog ---- */

static int starts(const char *p, const char *end, const char *lit)
{
        size_t n = strlen(lit);

        return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static const char *find(const char *p, const char *end, const char *lit)
{
        for (; p < end; p++)
                if (starts(p, end, lit))
                        return p;
        return NULL;
}

static int is_space(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The XML declaration decl..end: its encoding, when it names one, must be
 * one whose markup bytes are ASCII's. */
static int encoding_check(const char *decl, const char *end, char *errstr,
                          size_t errstr_size)
{
        /* name, and whether it is a prefix (iso-8859-1 .. -16) */
        static const struct {
                const char *name;
                int prefix;
        } ok[] = {{"utf-8", 0},      {"utf8", 0},   {"us-ascii", 0},
                  {"ascii", 0},      {"latin1", 0}, {"iso-8859-", 1},
                  {"windows-125", 1}};
        const char *p = find(decl, end, "encoding");
        const char *v;
        char quote;
        size_t n;

        if (!p)
                return 0;
        p += 8;
        while (p < end && (is_space(*p) || *p == '='))
                p++;
        if (p >= end || (*p != '"' && *p != '\''))
                return 0; /* malformed: the parser says so */
        quote = *p++;
        v = p;
        while (p < end && *p != quote)
                p++;
        n = (size_t)(p - v);
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                size_t k = strlen(ok[i].name);
                if ((ok[i].prefix ? n > k : n == k) &&
                    strncasecmp(v, ok[i].name, k) == 0)
                        return 0;
        }
        snprintf(errstr, errstr_size,
                 "XML declares encoding \"%.*s\": refused, only UTF-8 and "
                 "ASCII-compatible encodings are read",
                 (int)(n > 40 ? 40 : n), v);
        return -1;
}

/* The DOCTYPE after "<!DOCTYPE": refused when its internal subset
 * declares an entity. */
static int doctype_check(const char *p, const char *end, char *errstr,
                         size_t errstr_size)
{
        char quote = 0;
        int subset = 0;

        for (; p < end; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                        continue;
                }
                if (*p == '"' || *p == '\'') {
                        quote = *p;
                } else if (!subset && *p == '>') {
                        return 0;
                } else if (!subset && *p == '[') {
                        subset = 1;
                } else if (subset && *p == ']') {
                        return 0;
                } else if (subset && starts(p, end, "<!--")) {
                        const char *q = find(p + 4, end, "-->");
                        if (!q)
                                return 0;
                        p = q + 2;
                } else if (subset && starts(p, end, "<!ENTITY")) {
                        snprintf(errstr, errstr_size,
                                 "XML declares entities (<!ENTITY> in its "
                                 "DOCTYPE): refused, entities are never "
                                 "loaded nor expanded (XXE, entity "
                                 "expansion)");
                        return -1;
                }
        }
        return 0;
}

/* What comes before the root element. 0, or -1 with errstr (refused);
 * what is not well-formed is left to the parser. */
static int prolog_check(const char *s, size_t len, char *errstr,
                        size_t errstr_size)
{
        const unsigned char *u = (const unsigned char *)s;
        const char *p = s, *end = s + len;

        if (len >= 2 &&
            ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE) ||
             u[0] == 0 || u[1] == 0)) {
                snprintf(errstr, errstr_size,
                         "XML in UTF-16 or UTF-32: refused, only UTF-8 and "
                         "ASCII-compatible encodings are read");
                return -1;
        }
        if (starts(p, end, "\xEF\xBB\xBF"))
                p += 3;
        for (;;) {
                const char *q;

                while (p < end && is_space(*p))
                        p++;
                if (starts(p, end, "<?xml") && p + 5 < end &&
                    (is_space(p[5]) || p[5] == '?')) {
                        q = find(p, end, "?>");
                        if (!q)
                                return 0;
                        if (encoding_check(p, q, errstr, errstr_size) < 0)
                                return -1;
                        p = q + 2;
                } else if (starts(p, end, "<?")) {
                        q = find(p + 2, end, "?>");
                        if (!q)
                                return 0;
                        p = q + 2;
                } else if (starts(p, end, "<!--")) {
                        q = find(p + 4, end, "-->");
                        if (!q)
                                return 0;
                        p = q + 3;
                } else if (starts(p, end, "<!DOCTYPE")) {
                        return doctype_check(p + 9, end, errstr, errstr_size);
                } else {
                        return 0; /* the root element (or not XML) */
                }
        }
}

/* ---- the conversion ---- */

/* A child element name of an open element, with the JSON values of its
 * occurrences so far, comma-separated: written as one value, or as an
 * array when it repeats or is in xml.arrays. */
struct member {
        const char *name; /* the reader's dictionary: valid with it */
        struct sl_buf vals;
        long n;
};

/* An open element of the current record. The JSON is written straight
 * from the reader's events, no tree built: frames, and their buffers,
 * are reused from record to record. */
struct frame {
        const char *name;    /* the reader's dictionary: valid with it */
        struct sl_buf attrs; /* "\"@a\":\"v\"" members, comma-separated */
        struct member *m;    /* children in first-seen order */
        size_t nm, cap;
        struct sl_buf text;
};

struct conv {
        const struct fetch_xml_opts *o;
        struct steps records, next;
        const char **path; /* open element names, [max_depth + 1] */
        struct frame *fr;  /* the open elements of the current record */
        size_t nfr;
        struct sl_buf out;
        long nrec; /* records in the page being written */
        /* streaming (fetch_xml_stream): a page is handed to the sink once
         * its JSON passes sink->page_bytes; NULL: one page */
        const struct fetch_xml_sink *sink;
        long pages; /* handed to the sink */
        char *sink_err;
        size_t sink_err_size;
        int sink_failed;
        struct sl_buf next_text;
        int next_depth; /* depth of the open next element, or -1 */
        int have_next;
        int too_big;
};

static int always_array(const struct conv *c, const char *name)
{
        for (size_t i = 0; i < c->o->arrays_n; i++)
                if (strcmp(c->o->arrays[i], name) == 0)
                        return 1;
        return 0;
}

static int all_space(const struct sl_buf *b)
{
        for (size_t i = 0; i < b->len; i++)
                if (!is_space(b->data[i]))
                        return 0;
        return 1;
}

/* The length of the UTF-8 sequence at p[0..n) as Jansson accepts it
 * (no overlong form, no surrogate, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
        unsigned u = p[0], cp;
        size_t k;

        if (u < 0x80)
                return 1;
        if (u < 0xC2 || u > 0xF4)
                return 0;
        k = u < 0xE0 ? 2 : u < 0xF0 ? 3 : 4;
        if (n < k)
                return 0;
        cp = u & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
        for (size_t i = 1; i < k; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                return 0;
        return k;
}

/* Appends s[0..n) as a JSON string, escaped as Jansson (and sl_json_dump)
 * escape: '"', '\\' and bytes below 0x20. -2: not UTF-8; -1: b's cap. */
static int put_str(struct sl_buf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *u = (const unsigned char *)s;
        size_t run = 0, i = 0;

        if (sl_buf_append(b, "\"", 1) < 0)
                return -1;
        while (i < n) {
                unsigned char ch;
                char esc[8];
                size_t k, elen = 2;

                /* the common case: a run of plain ASCII */
                while (i < n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' &&
                       u[i] != '\\') {
                        i++;
                        run++;
                }
                if (i == n)
                        break;
                ch = u[i];
                if (ch >= 0x20 && ch != '"' && ch != '\\') {
                        k = ch < 0x80 ? 1 : utf8_len(u + i, n - i);
                        if (k == 0)
                                return -2;
                        i += k;
                        run += k;
                        continue;
                }
                if (run && sl_buf_append(b, s + i - run, run) < 0)
                        return -1;
                run = 0;
                esc[0] = '\\';
                switch (ch) {
                case '"':
                case '\\':
                        esc[1] = (char)ch;
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        memcpy(esc + 1, "u00", 3);
                        esc[4] = hex[ch >> 4];
                        esc[5] = hex[ch & 15];
                        elen = 6;
                        break;
                }
                if (sl_buf_append(b, esc, elen) < 0)
                        return -1;
                i++;
        }
        if (run && sl_buf_append(b, s + i - run, run) < 0)
                return -1;
        return sl_buf_append(b, "\"", 1);
}

/* Writes the value of the element f closes into dst: the plain text for
 * an element with neither attributes nor children, else an object of its
 * attributes ("@a"), children (an array when repeated or in xml.arrays)
 * and "#text" when it holds text besides white space. 0, -1 (dst's cap)
 * or -2 (text that is not UTF-8). */
static int frame_value(const struct conv *c, struct frame *f,
                       struct sl_buf *dst)
{
        const char *t = f->text.data ? f->text.data : "";
        int rc, comma = 0;

        if (f->attrs.len == 0 && f->nm == 0)
                return put_str(dst, t, f->text.len);
        if (sl_buf_append(dst, "{", 1) < 0)
                return -1;
        if (f->attrs.len) {
                if (sl_buf_append(dst, f->attrs.data, f->attrs.len) < 0)
                        return -1;
                comma = 1;
        }
        for (size_t i = 0; i < f->nm; i++) {
                struct member *m = &f->m[i];
                int arr = m->n > 1 || always_array(c, m->name);
                if (comma && sl_buf_append(dst, ",", 1) < 0)
                        return -1;
                comma = 1;
                rc = put_str(dst, m->name, strlen(m->name));
                if (rc < 0)
                        return rc;
                if (sl_buf_append(dst, arr ? ":[" : ":", arr ? 2 : 1) < 0 ||
                    sl_buf_append(dst, m->vals.data, m->vals.len) < 0 ||
                    (arr && sl_buf_append(dst, "]", 1) < 0))
                        return -1;
        }
        if (!all_space(&f->text)) {
                if (comma && sl_buf_append(dst, ",", 1) < 0)
                        return -1;
                if (sl_buf_puts(dst, "\"#text\":") < 0)
                        return -1;
                rc = put_str(dst, t, f->text.len);
                if (rc < 0)
                        return rc;
        }
        return sl_buf_append(dst, "}", 1);
}

/* The member of f for child elements called name (new when none yet):
 * its buffer gets the next value, after a comma when it holds one. */
static struct member *member_for(const struct conv *c, struct frame *f,
                                 const char *name)
{
        struct member *m;

        for (size_t i = 0; i < f->nm; i++)
                if (f->m[i].name == name || strcmp(f->m[i].name, name) == 0)
                        return &f->m[i];
        if (f->nm == f->cap) {
                size_t cap = f->cap ? f->cap * 2 : 8;
                f->m = sl_realloc(f->m, cap * sizeof(*f->m));
                for (size_t i = f->cap; i < cap; i++)
                        sl_buf_init(&f->m[i].vals, c->out.max);
                f->cap = cap;
        }
        m = &f->m[f->nm++];
        m->name = name;
        m->n = 0;
        sl_buf_reset(&m->vals);
        return m;
}

static int out_write(const char *buf, size_t size, void *opaque)
{
        struct conv *c = opaque;

        if (sl_buf_append(&c->out, buf, size) < 0) {
                c->too_big = 1;
                return -1;
        }
        return 0;
}

static int refuse_size(struct conv *c, char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size,
                 "the JSON page made from the XML is larger than "
                 "limits.max_page_bytes (%zu bytes)",
                 c->out.max);
        return FETCH_XML_REFUSED;
}

/* Pushes a frame for the element the reader is on, with its attributes
 * as "@name" members (namespace declarations left out). 0, or what
 * put_str says. */
static int push(struct conv *c, xmlTextReaderPtr reader, const char *name)
{
        struct frame *f = &c->fr[c->nfr++];
        int rc = 0;

        f->name = name;
        f->nm = 0;
        sl_buf_reset(&f->attrs);
        sl_buf_reset(&f->text);
        while (rc == 0 && xmlTextReaderMoveToNextAttribute(reader) == 1) {
                const char *an = (const char *)xmlTextReaderConstName(reader);
                const char *av = (const char *)xmlTextReaderConstValue(reader);
                size_t n;
                if (xmlTextReaderIsNamespaceDecl(reader) == 1 || !an)
                        continue;
                if (f->attrs.len && sl_buf_append(&f->attrs, ",", 1) < 0)
                        rc = -1;
                /* an XML name holds no quote, backslash nor control
                 * character: nothing to escape */
                n = strlen(an);
                if (rc == 0 && (sl_buf_append(&f->attrs, "\"@", 2) < 0 ||
                                sl_buf_append(&f->attrs, an, n) < 0 ||
                                sl_buf_append(&f->attrs, "\"", 1) < 0))
                        rc = -1;
                if (rc == 0 && sl_buf_append(&f->attrs, ":", 1) < 0)
                        rc = -1;
                if (rc == 0)
                        rc = put_str(&f->attrs, av ? av : "",
                                     av ? strlen(av) : 0);
        }
        xmlTextReaderMoveToElement(reader);
        return rc;
}

/* Streaming: the page so far ({"records":[...]}) to the sink, and a new
 * page begun. */
static int flush_page(struct conv *c, char *errstr, size_t errstr_size)
{
        int rc;

        if (out_write("]}", 2, c) < 0)
                return refuse_size(c, errstr, errstr_size);
        rc = c->sink->emit(c->out.data, c->out.len, c->nrec, c->sink->opaque,
                           errstr, errstr_size);
        c->pages++;
        sl_buf_reset(&c->out);
        c->nrec = 0;
        if (rc < 0) {
                c->sink_failed = 1;
                return FETCH_XML_REFUSED;
        }
        if (sl_buf_puts(&c->out, "{\"records\":[") < 0)
                return refuse_size(c, errstr, errstr_size);
        return FETCH_XML_OK;
}

static int write_error(struct conv *c, int rc, char *errstr, size_t errstr_size)
{
        if (rc == -2) {
                snprintf(errstr, errstr_size, "XML text is not UTF-8");
                return FETCH_XML_MALFORMED;
        }
        return refuse_size(c, errstr, errstr_size);
}

/* The end of an element at depth d. */
static int end_element(struct conv *c, int d, char *errstr, size_t errstr_size)
{
        struct frame *f;
        int rc;

        if (c->nfr == 0) {
                if (c->next_depth == d)
                        c->next_depth = -1;
                return FETCH_XML_OK;
        }
        f = &c->fr[--c->nfr];
        if (c->nfr > 0) {
                struct member *m = member_for(c, &c->fr[c->nfr - 1], f->name);
                if (m->n > 0 && sl_buf_append(&m->vals, ",", 1) < 0)
                        return refuse_size(c, errstr, errstr_size);
                rc = frame_value(c, f, &m->vals);
                if (rc < 0)
                        return write_error(c, rc, errstr, errstr_size);
                m->n++;
                return FETCH_XML_OK;
        }
        /* a whole record */
        if (c->nrec > 0 && out_write(",", 1, c) < 0)
                return refuse_size(c, errstr, errstr_size);
        rc = frame_value(c, f, &c->out);
        if (rc < 0)
                return write_error(c, rc, errstr, errstr_size);
        c->nrec++;
        if (c->sink && c->out.len >= c->sink->page_bytes)
                return flush_page(c, errstr, errstr_size);
        return FETCH_XML_OK;
}

/* An element start; d is its depth (the root's is 0). */
static int start_element(struct conv *c, xmlTextReaderPtr reader, int d,
                         char *errstr, size_t errstr_size)
{
        const char *name = (const char *)xmlTextReaderConstName(reader);
        int empty = xmlTextReaderIsEmptyElement(reader) == 1;

        if (d + 1 > c->o->max_depth) {
                snprintf(errstr, errstr_size,
                         "XML nests deeper than limits.max_depth (%ld)",
                         c->o->max_depth);
                return FETCH_XML_REFUSED;
        }
        c->path[d] = name ? name : "";
        if (c->nfr > 0 || steps_match(&c->records, c->path, d)) {
                int rc = push(c, reader, c->path[d]);
                if (rc < 0)
                        return write_error(c, rc, errstr, errstr_size);
        } else if (steps_match(&c->next, c->path, d)) {
                c->next_depth = d;
                c->have_next = 1;
                sl_buf_reset(&c->next_text);
        }
        if (empty)
                return end_element(c, d, errstr, errstr_size);
        return FETCH_XML_OK;
}

static int text(struct conv *c, xmlTextReaderPtr reader)
{
        const char *t = (const char *)xmlTextReaderConstValue(reader);
        struct sl_buf *b = NULL;

        if (c->nfr > 0)
                b = &c->fr[c->nfr - 1].text;
        else if (c->next_depth >= 0)
                b = &c->next_text;
        if (!b || !t)
                return 0;
        return sl_buf_append(b, t, strlen(t));
}

/* The first error the parser reports. */
struct xerr {
        int set;
        int code;
        int line;
        char msg[200];
};

static void on_error(void *arg, xmlErrorPtr e)
{
        struct xerr *x = arg;
        size_t n;

        if (x->set || !e)
                return;
        x->set = 1;
        x->code = e->code;
        x->line = e->line;
        snprintf(x->msg, sizeof(x->msg), "%s", e->message ? e->message : "");
        n = strlen(x->msg);
        while (n > 0 && is_space(x->msg[n - 1]))
                x->msg[--n] = '\0';
}

/* A parser error: refused when it is about entities or depth. */
static int parse_error(const struct conv *c, const struct xerr *x, char *errstr,
                       size_t errstr_size)
{
        if (x->code == XML_ERR_ENTITY_LOOP ||
            x->code == XML_ERR_UNDECLARED_ENTITY ||
            x->code == XML_WAR_UNDECLARED_ENTITY ||
            x->code == XML_IO_LOAD_ERROR ||
            x->code == XML_ERR_EXT_ENTITY_STANDALONE ||
            strstr(x->msg, "entity") || strstr(x->msg, "Entity")) {
                snprintf(errstr, errstr_size,
                         "XML refused at line %d: %s (entities are never "
                         "loaded nor expanded)",
                         x->line, x->msg);
                return FETCH_XML_REFUSED;
        }
        if (strstr(x->msg, "Excessive depth")) {
                snprintf(errstr, errstr_size,
                         "XML nests deeper than limits.max_depth (%ld)",
                         c->o->max_depth);
                return FETCH_XML_REFUSED;
        }
        snprintf(errstr, errstr_size, "XML is not well-formed (line %d: %s)",
                 x->line, x->set ? x->msg : "unknown error");
        return FETCH_XML_MALFORMED;
}

static int dtd_check(xmlTextReaderPtr reader, char *errstr, size_t errstr_size)
{
        /* not xmlTextReaderCurrentDoc: it makes the reader keep (and
         * the caller free) the whole tree */
        xmlNodePtr node = xmlTextReaderCurrentNode(reader);
        xmlDocPtr doc = node ? node->doc : NULL;
        xmlDtdPtr dtd = doc ? doc->intSubset : NULL;

        if (dtd && (dtd->entities || dtd->pentities)) {
                snprintf(errstr, errstr_size,
                         "XML declares entities (<!ENTITY> in its DOCTYPE): "
                         "refused, entities are never loaded nor expanded "
                         "(XXE, entity expansion)");
                return FETCH_XML_REFUSED;
        }
        return FETCH_XML_OK;
}

static int convert(struct conv *c, xmlTextReaderPtr reader, struct xerr *x,
                   char *errstr, size_t errstr_size)
{
        int rc = FETCH_XML_OK;
        int rooted = 0;

        for (;;) {
                int r = xmlTextReaderRead(reader);
                int type, d;

                if (r == 0)
                        break;
                if (r < 0 || x->set)
                        return parse_error(c, x, errstr, errstr_size);
                type = xmlTextReaderNodeType(reader);
                d = xmlTextReaderDepth(reader);
                switch (type) {
                case XML_READER_TYPE_DOCUMENT_TYPE:
                        rc = dtd_check(reader, errstr, errstr_size);
                        break;
                case XML_READER_TYPE_ENTITY_REFERENCE:
                case XML_READER_TYPE_ENTITY:
                        snprintf(errstr, errstr_size,
                                 "XML refers to an entity (&%s;): refused, "
                                 "entities are never loaded nor expanded",
                                 (const char *)xmlTextReaderConstName(reader));
                        rc = FETCH_XML_REFUSED;
                        break;
                case XML_READER_TYPE_ELEMENT:
                        if (!rooted) {
                                rooted = 1;
                                rc = dtd_check(reader, errstr, errstr_size);
                                if (rc != FETCH_XML_OK)
                                        break;
                        }
                        rc = start_element(c, reader, d, errstr, errstr_size);
                        break;
                case XML_READER_TYPE_END_ELEMENT:
                        rc = end_element(c, d, errstr, errstr_size);
                        break;
                case XML_READER_TYPE_TEXT:
                case XML_READER_TYPE_CDATA:
                case XML_READER_TYPE_WHITESPACE:
                case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
                        if (text(c, reader) < 0)
                                rc = refuse_size(c, errstr, errstr_size);
                        break;
                default:
                        break; /* comments, processing instructions */
                }
                if (rc != FETCH_XML_OK)
                        return rc;
        }
        if (x->set)
                return parse_error(c, x, errstr, errstr_size);
        if (!rooted) {
                snprintf(errstr, errstr_size,
                         "XML is not well-formed (no root element)");
                return FETCH_XML_MALFORMED;
        }
        return FETCH_XML_OK;
}

/* Appends ,"next":"..." with the next element's text, trimmed. */
static int put_next(struct conv *c)
{
        const char *t = c->next_text.data ? c->next_text.data : "";
        size_t n = c->next_text.len;
        json_t *s;
        int rc;

        while (n > 0 && is_space(*t)) {
                t++;
                n--;
        }
        while (n > 0 && is_space(t[n - 1]))
                n--;
        if (n == 0)
                return 0;
        s = json_stringn(t, n);
        if (!s)
                return 0;
        rc = out_write(",\"next\":", 8, c);
        if (rc == 0)
                rc = json_dump_callback(s, out_write, c,
                                        JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(s);
        return rc;
}

static void conv_init(struct conv *c, const struct fetch_xml_opts *o)
{
        memset(c, 0, sizeof(*c));
        c->o = o;
        c->next_depth = -1;
        sl_buf_init(&c->out, o->max_bytes);
        sl_buf_init(&c->next_text, 64 * 1024);
        steps_parse(&c->records, o->records ? o->records : "");
        if (o->next)
                steps_parse(&c->next, o->next);
        c->path = sl_calloc((size_t)o->max_depth + 1, sizeof(*c->path));
        c->fr = sl_calloc((size_t)o->max_depth + 1, sizeof(*c->fr));
        for (long i = 0; i <= o->max_depth; i++) {
                sl_buf_init(&c->fr[i].attrs, o->max_bytes);
                sl_buf_init(&c->fr[i].text, o->max_bytes);
        }
}

static void conv_free(struct conv *c)
{
        for (long i = 0; c->fr && i <= c->o->max_depth; i++) {
                struct frame *f = &c->fr[i];
                for (size_t k = 0; k < f->cap; k++)
                        sl_buf_free(&f->m[k].vals);
                free(f->m);
                sl_buf_free(&f->attrs);
                sl_buf_free(&f->text);
        }
        free(c->fr);
        free(c->path);
        steps_free(&c->records);
        steps_free(&c->next);
        sl_buf_free(&c->next_text);
        sl_buf_free(&c->out);
}

/* Reads the whole document from reader (taken over) into c->out, the
 * last page's records closed with its next. */
static int conv_run(struct conv *c, xmlTextReaderPtr reader, char *errstr,
                    size_t errstr_size)
{
        struct xerr x;
        int rc;

        memset(&x, 0, sizeof(x));
        if (!reader) {
                snprintf(errstr, errstr_size, "XML reader could not start");
                return FETCH_XML_MALFORMED;
        }
        xmlTextReaderSetStructuredErrorHandler(reader, on_error, &x);
        if (sl_buf_puts(&c->out, "{\"records\":[") < 0) {
                rc = refuse_size(c, errstr, errstr_size);
                goto out;
        }
        rc = convert(c, reader, &x, errstr, errstr_size);
        if (rc != FETCH_XML_OK)
                goto out;
        if (out_write("]", 1, c) < 0 || (c->have_next && put_next(c) < 0) ||
            out_write("}", 1, c) < 0)
                rc = refuse_size(c, errstr, errstr_size);
out:
        xmlFreeTextReader(reader);
        return rc;
}

int fetch_xml_page(const struct fetch_xml_opts *o, const char *xml, size_t len,
                   char **out, size_t *out_len, char *errstr,
                   size_t errstr_size)
{
        struct conv c;
        int rc;

        *out = NULL;
        *out_len = 0;
        conv_init(&c, o);
        if (len > INT_MAX) {
                rc = refuse_size(&c, errstr, errstr_size);
                goto out;
        }
        if (prolog_check(xml, len, errstr, errstr_size) < 0) {
                rc = FETCH_XML_REFUSED;
                goto out;
        }
        pthread_once(&setup_once, setup);
        rc = conv_run(&c,
                      xmlReaderForMemory(xml, (int)len, NULL, NULL,
                                         XML_PARSE_NONET | XML_PARSE_NOERROR |
                                             XML_PARSE_NOWARNING),
                      errstr, errstr_size);
        if (rc == FETCH_XML_OK)
                *out = sl_buf_steal(&c.out, out_len);
out:
        conv_free(&c);
        return rc;
}

/* ---- streaming from a file ---- */

#define PROLOG_BYTES (64 * 1024)

struct fd_input {
        int fd;
        char *head; /* the first bytes, read for the prolog check */
        size_t head_len, head_at;
        int err; /* errno of a failed read */
};

static int fd_read(void *ctx, char *buf, int len)
{
        struct fd_input *in = ctx;
        ssize_t n;

        if (in->head_at < in->head_len) {
                size_t k = in->head_len - in->head_at;
                if (k > (size_t)len)
                        k = (size_t)len;
                memcpy(buf, in->head + in->head_at, k);
                in->head_at += k;
                return (int)k;
        }
        do {
                n = read(in->fd, buf, (size_t)len);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
                in->err = errno;
                return -1;
        }
        return (int)n;
}

static int fd_close(void *ctx)
{
        (void)ctx; /* the caller's fd */
        return 0;
}

int fetch_xml_stream(const struct fetch_xml_opts *o, int fd,
                     const struct fetch_xml_sink *sink, long *pages,
                     char *errstr, size_t errstr_size)
{
        struct fd_input in;
        struct conv c;
        int rc;

        *pages = 0;
        memset(&in, 0, sizeof(in));
        in.fd = fd;
        in.head = sl_malloc(PROLOG_BYTES);
        while (in.head_len < PROLOG_BYTES) {
                ssize_t n =
                    read(fd, in.head + in.head_len, PROLOG_BYTES - in.head_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        snprintf(errstr, errstr_size, "read: %s",
                                 strerror(errno));
                        free(in.head);
                        return FETCH_XML_MALFORMED;
                }
                if (n == 0)
                        break;
                in.head_len += (size_t)n;
        }
        conv_init(&c, o);
        c.sink = sink;
        if (prolog_check(in.head, in.head_len, errstr, errstr_size) < 0) {
                rc = FETCH_XML_REFUSED;
                goto out;
        }
        pthread_once(&setup_once, setup);
        rc = conv_run(&c,
                      xmlReaderForIO(fd_read, fd_close, &in, NULL, NULL,
                                     XML_PARSE_NONET | XML_PARSE_NOERROR |
                                         XML_PARSE_NOWARNING),
                      errstr, errstr_size);
        if (in.err && rc != FETCH_XML_OK && !c.sink_failed)
                snprintf(errstr, errstr_size, "read: %s", strerror(in.err));
        if (rc == FETCH_XML_OK && (c.nrec > 0 || c.pages == 0)) {
                /* the last page (or the only one, even empty) */
                if (sink->emit(c.out.data, c.out.len, c.nrec, sink->opaque,
                               errstr, errstr_size) < 0) {
                        c.sink_failed = 1;
                        rc = FETCH_XML_REFUSED;
                }
                c.pages++;
        }
        *pages = c.pages;
        if (c.sink_failed)
                rc = FETCH_XML_SINK;
out:
        conv_free(&c);
        free(in.head);
        return rc;
}

/* ---- SOAP faults ---- */

static const char *local_name(xmlTextReaderPtr reader)
{
        const char *n = (const char *)xmlTextReaderConstLocalName(reader);

        return n ? n : "";
}

/* Appends t to the capture buf[0..size), trimmed of leading space while
 * empty; what does not fit is dropped. */
static void capture(char *buf, size_t size, const char *t)
{
        size_t n = strlen(buf);

        if (n == 0)
                while (*t && is_space(*t))
                        t++;
        snprintf(buf + n, size - n, "%s", t);
}

static void trim_end(char *buf)
{
        size_t n = strlen(buf);

        while (n > 0 && is_space(buf[n - 1]))
                buf[--n] = '\0';
}

int fetch_xml_soap_fault(const char *xml, size_t len, char *code,
                         size_t code_size, char *reason, size_t reason_size)
{
        xmlTextReaderPtr reader = NULL;
        struct xerr x;
        char sub[128] = "";
        char why[256];
        char *target = NULL; /* the capture the text goes to */
        size_t target_size = 0;
        int in_body = 0, in_fault = 0, rc = -1;

        code[0] = '\0';
        reason[0] = '\0';
        memset(&x, 0, sizeof(x));
        if (len == 0 || len > INT_MAX ||
            prolog_check(xml, len, why, sizeof(why)) < 0)
                return -1;
        pthread_once(&setup_once, setup);
        reader = xmlReaderForMemory(xml, (int)len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR |
                                        XML_PARSE_NOWARNING);
        if (!reader)
                return -1;
        xmlTextReaderSetStructuredErrorHandler(reader, on_error, &x);
        for (;;) {
                int r = xmlTextReaderRead(reader);
                int type, d;
                const char *name;

                if (r == 0) {
                        rc = in_fault ? 1 : 0;
                        break;
                }
                if (r < 0 || x.set)
                        break;
                type = xmlTextReaderNodeType(reader);
                d = xmlTextReaderDepth(reader);
                if (type == XML_READER_TYPE_ENTITY_REFERENCE ||
                    type == XML_READER_TYPE_DOCUMENT_TYPE)
                        break; /* refused, as for any page */
                if (type == XML_READER_TYPE_END_ELEMENT) {
                        target = NULL;
                        if (in_fault && d == 2) {
                                rc = 1;
                                break;
                        }
                        continue;
                }
                if (type == XML_READER_TYPE_TEXT ||
                    type == XML_READER_TYPE_CDATA) {
                        const char *t =
                            (const char *)xmlTextReaderConstValue(reader);
                        if (target && t)
                                capture(target, target_size, t);
                        continue;
                }
                if (type != XML_READER_TYPE_ELEMENT)
                        continue;
                name = local_name(reader);
                target = NULL;
                if (d == 0 && strcmp(name, "Envelope") != 0) {
                        rc = 0; /* not SOAP */
                        break;
                }
                if (d == 1) {
                        in_body = strcmp(name, "Body") == 0;
                        if (!in_body && strcmp(name, "Header") != 0) {
                                rc = 0;
                                break;
                        }
                        continue;
                }
                if (d == 2 && in_body) {
                        if (strcmp(name, "Fault") != 0) {
                                rc = 0; /* an answer, not a fault */
                                break;
                        }
                        in_fault = 1;
                        continue;
                }
                if (!in_fault)
                        continue;
                /* 1.1: faultcode, faultstring; 1.2: Code/Value,
                 * Code/Subcode/Value, Reason/Text */
                if (d == 3 && strcmp(name, "faultcode") == 0) {
                        target = code;
                        target_size = code_size;
                } else if (d == 3 && strcmp(name, "faultstring") == 0) {
                        target = reason;
                        target_size = reason_size;
                } else if (d == 4 && strcmp(name, "Value") == 0 && !code[0]) {
                        target = code;
                        target_size = code_size;
                } else if (d == 5 && strcmp(name, "Value") == 0 && !sub[0]) {
                        target = sub;
                        target_size = sizeof(sub);
                } else if (d == 4 && strcmp(name, "Text") == 0 && !reason[0]) {
                        target = reason;
                        target_size = reason_size;
                }
                if (target && xmlTextReaderIsEmptyElement(reader) == 1)
                        target = NULL;
        }
        xmlFreeTextReader(reader);
        trim_end(code);
        trim_end(sub);
        trim_end(reason);
        if (rc == 1 && sub[0]) {
                size_t n = strlen(code);
                snprintf(code + n, code_size - n, " / %s", sub);
        }
        return rc;
}

const char *fetch_xml_fault_local(const char *code, size_t *n)
{
        const char *end = strstr(code, " / ");
        const char *colon;

        if (!end)
                end = code + strlen(code);
        colon = code;
        for (const char *p = code; p < end; p++)
                if (*p == ':')
                        colon = p + 1;
        *n = (size_t)(end - colon);
        return colon;
}

int fetch_xml_body(const struct fetch_source *src, struct sl_buf *body,
                   char *why, size_t why_size)
{
        struct fetch_xml_opts o;
        char *page = NULL;
        size_t n = 0;
        int rc;

        memset(&o, 0, sizeof(o));
        o.records = src->xml_records;
        o.next = src->xml_next;
        o.arrays = src->xml_arrays;
        o.arrays_n = src->xml_arrays_n;
        o.max_depth = src->max_depth;
        o.max_bytes = (size_t)src->max_page_bytes;
        rc = fetch_xml_page(&o, body->data ? body->data : "", body->len, &page,
                            &n, why, why_size);
        if (rc != FETCH_XML_OK)
                return rc;
        /* the page takes the body's place: its bytes are what is
         * published (the XML is not kept) */
        free(body->data);
        body->data = page;
        body->len = n;
        body->cap = n + 1;
        return FETCH_XML_OK;
}
