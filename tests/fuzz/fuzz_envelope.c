/* fuzz_envelope: the loader's envelope decoder (load_batch_add in
 * loaders/load_batch.c), which must keep any message, valid or not, to be
 * loaded or dead-lettered at flush; and load_env_decode, whose tree with
 * its raw nodes expanded must equal Jansson's decoding of every text the
 * validator accepts (aborts on a difference). Input: a message key, a line
 * "----", then the message value. */
#include "fuzz.h"
#include "load_batch.h"
#include "load_env.h"
#include "sl_jsonscan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *value;
        size_t value_size;
        char *key = fuzz_split(data, size, "\n----\n", &value, &value_size);
        struct load_batch *b = load_batch_new("mapped.fuzz_table");
        rd_kafka_message_t rkm;
        void *copy = malloc(value_size ? value_size : 1);

        if (!copy)
                abort();
        /* the payload sits in its own allocation, as librdkafka's does, so
         * a read past its end is caught */
        memcpy(copy, value, value_size);
        memset(&rkm, 0, sizeof(rkm));
        rkm.partition = 1;
        rkm.offset = 42;
        rkm.key = key;
        rkm.key_len = strlen(key);
        rkm.payload = value_size ? copy : NULL;
        rkm.len = value_size;
        load_batch_add(b, &rkm);
        rkm.offset = 43;
        load_batch_add(b, &rkm);
        load_batch_clear(b);
        load_batch_add(b, &rkm);
        load_batch_destroy(b);
        if (sl_json_validate(copy, value_size, 0, NULL) == 0) {
                json_t *want = json_loadb(copy, value_size, 0, NULL);
                json_t *env = load_env_decode(copy, value_size);
                json_t *got = env ? load_raw_expand(env) : NULL;

                if (!want || (json_is_object(want) && !json_equal(want, got)))
                        abort();
                json_decref(want);
                json_decref(env);
                json_decref(got);
        }
        free(copy);
        free(key);
        return 0;
}
