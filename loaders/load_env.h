/* load_env: the envelope of a mapped.<table> message as the loader needs
 * it, built from the text in one pass without Jansson's parser.
 *
 * Most of an envelope's bytes are JSON the loader does not look into: the
 * lineage and the row's json/jsonb values (NVD's metrics). Decoding them
 * into a tree and dumping the tree back to text for COPY was most of the
 * loader's CPU (perf: Jansson 56 %). Here they stay text: the value of a
 * member of "row" (or of an element of "rows") and of "lineage" that is an
 * object or an array is kept as a raw node, its exact bytes, which go to
 * PostgreSQL as they came, so 7.3 stays 7.3. Everything else is decoded
 * into ordinary Jansson values, so the envelope checks read as before.
 *
 * A raw node points into the envelope's text, which is not copied (the
 * loader keeps librdkafka's message until the batch is written): it is a
 * Jansson string whose first byte is NUL, followed by the address and the
 * length of the JSON text. No decoded string can look like that: the
 * envelope's text is validated first, and a validated text has no \u0000. */
#ifndef LOAD_ENV_H
#define LOAD_ENV_H

#include <jansson.h>
#include <stddef.h>

/* The envelope tree of text[0..len), which sl_json_validate() accepted,
 * with raw nodes as above; NULL when the text is not an object (then
 * decode it with json_loadb to say what it is). Its raw nodes point into
 * text, which must outlive the tree. */
json_t *load_env_decode(const char *text, size_t len);

/* The JSON text of a raw node (and its length), or NULL when v is not
 * one. */
const char *load_raw_text(const json_t *v, size_t *len);

/* The decoded value of a raw node (new reference), or a new reference to
 * v when it is not one. NULL only when out of memory. */
json_t *load_raw_decode(json_t *v);

/* A copy of tree v with every raw node decoded (new reference). */
json_t *load_raw_expand(json_t *v);

#endif
