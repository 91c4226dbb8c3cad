/* fuzz_xml: fetch_xml_page (producers/fetch_xml.c), which every page of an
 * XML source passes through, on any bytes: it must never crash, leak or
 * read past them, and what it accepts must be a JSON page whose records
 * are an array (the contract the fetcher and the maps rely on). The SOAP
 * fault reader (fetch_xml_soap_fault), which reads every answer of a SOAP
 * source first, gets the same bytes: its strings stay terminated and
 * within their buffers. */
#include "fetch_xml.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const arrays[] = {"DETECTION", "ReportItem", "tag"};
        struct fetch_xml_opts o = {
            .records = "/*/*/*",
            .next = "/*/RESPONSE/WARNING/URL",
            .arrays = arrays,
            .arrays_n = 3,
            .max_depth = 64,
            .max_bytes = 1 << 22,
        };
        char err[512];
        char *page = NULL;
        size_t n = 0;
        json_t *root;

        char code[64], reason[64];
        size_t ln;

        if (fetch_xml_soap_fault((const char *)data, size, code, sizeof(code),
                                 reason, sizeof(reason)) == 1 &&
            (strlen(code) >= sizeof(code) || strlen(reason) >= sizeof(reason) ||
             fetch_xml_fault_local(code, &ln) + ln > code + strlen(code)))
                abort();
        if (fetch_xml_page(&o, (const char *)data, size, &page, &n, err,
                           sizeof(err)) != FETCH_XML_OK) {
                if (page)
                        abort(); /* a page with an error */
                return 0;
        }
        root = json_loadb(page, n, 0, NULL);
        if (!root || !json_is_array(json_object_get(root, "records")))
                abort(); /* accepted, but not a JSON page */
        json_decref(root);
        free(page);
        return 0;
}
