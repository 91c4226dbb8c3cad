/* fetch_xml: an XML page converted to the JSON page every other part of
 * sluice reads ({"records": [...], "next": "..."}), with libxml2's
 * streaming reader (no document tree), refusing what could make the
 * parser read files or the network (XXE) or expand entities (billion
 * laughs). The conversion rules are in docs/sources.md, "XML sources". */
#ifndef FETCH_XML_H
#define FETCH_XML_H

#include "fetch_source.h"
#include "sl_util.h"

#include <stddef.h>

enum {
        FETCH_XML_OK = 0,
        FETCH_XML_MALFORMED = -1, /* not well-formed (truncated?): retry */
        FETCH_XML_REFUSED = -2,   /* unsafe or over a limit: bad for good */
        FETCH_XML_SINK = -3,      /* the sink failed (its errstr) */
};

struct fetch_xml_opts {
        /* element path of the records, "/A/B/C" from the root; a step "*"
         * matches any element */
        const char *records;
        /* element path of the next page's URL, or NULL */
        const char *next;
        /* element names whose values are always arrays (borrowed) */
        const char *const *arrays;
        size_t arrays_n;
        long max_depth;   /* elements nested deeper than this: refused */
        size_t max_bytes; /* the JSON page's cap; 0: 1 GiB */
};

/* Checks an element path ("/A/B", each step a name or "*"). 0, or -1
 * with errstr. */
int fetch_xml_path_check(const char *path, char *errstr, size_t errstr_size);

/* Converts the document xml[0..len) into a JSON page: {"records": [one
 * object per element at o->records, in document order]} with "next": the
 * text of the o->next element when there is one (and not empty). Returns
 * FETCH_XML_OK with the page in *out (new; free with free()) and its
 * length in *out_len, or FETCH_XML_MALFORMED / FETCH_XML_REFUSED with
 * errstr. */
int fetch_xml_page(const struct fetch_xml_opts *o, const char *xml, size_t len,
                   char **out, size_t *out_len, char *errstr,
                   size_t errstr_size);

/* Where fetch_xml_stream hands its pages. */
struct fetch_xml_sink {
        /* a page is handed over once its JSON passes this many bytes
         * (after the record that passed it) */
        size_t page_bytes;
        /* page[0..len) is a JSON page {"records": [...]} of nrec records,
         * borrowed for the call. 0, or -1 with errstr to stop */
        int (*emit)(const char *page, size_t len, long nrec, void *opaque,
                    char *errstr, size_t errstr_size);
        void *opaque;
};

/* Converts the document read from fd (to its end; fd stays open) as
 * fetch_xml_page does, in pages of about sink->page_bytes handed to
 * sink->emit as they fill, so that memory holds one page and one record,
 * never the document (xml.next is not read: a file has no next page).
 * At least one page is handed over, even with no records. FETCH_XML_OK
 * with the page count in *pages, FETCH_XML_MALFORMED or
 * FETCH_XML_REFUSED (pages already handed over stay handed over), or
 * FETCH_XML_SINK with the sink's errstr. */
int fetch_xml_stream(const struct fetch_xml_opts *o, int fd,
                     const struct fetch_xml_sink *sink, long *pages,
                     char *errstr, size_t errstr_size);

/* A SOAP Fault (1.1 or 1.2): the first child of the answer's
 * Envelope/Body is a Fault. Returns 1 with the fault code in code (as
 * written, "soapenv:Server"; 1.2: Code/Value, then " / " and
 * Subcode/Value when there is one) and its faultstring (1.2: the first
 * Reason/Text) in reason, both trimmed and cut to fit; 0 when the answer
 * is not a fault (reading stops at the Body's first child, so a large
 * answer costs little); -1 when it cannot be read that far (not XML,
 * refused as any XML page is). */
int fetch_xml_soap_fault(const char *xml, size_t len, char *code,
                         size_t code_size, char *reason, size_t reason_size);

/* The local name of a fault code ("Server" for "soapenv:Server", up to
 * the first " / "), borrowed from code. Its length goes to *n. */
const char *fetch_xml_fault_local(const char *code, size_t *n);

/* An XML source's answer body (src->xml) replaced by its JSON page:
 * src's xml.records, xml.next, xml.arrays, limits.max_depth, and
 * limits.max_page_bytes as the JSON page's cap too. body is left as it
 * was unless FETCH_XML_OK; FETCH_XML_MALFORMED or FETCH_XML_REFUSED with
 * why. */
int fetch_xml_body(const struct fetch_source *src, struct sl_buf *body,
                   char *why, size_t why_size);

#endif
