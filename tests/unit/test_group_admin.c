/* test_group_admin: offsets as replay prints them: numbers, and "none",
 * "earliest", "latest" for librdkafka's logical offsets, never -1001. */
#include "group_admin.h"
#include "tap.h"

int main(void)
{
        char buf[32];

        TAP_STR_EQ(
            group_admin_offset_str(RD_KAFKA_OFFSET_INVALID, buf, sizeof(buf)),
            "none", "nothing committed (-1001) prints as none");
        TAP_STR_EQ(
            group_admin_offset_str(RD_KAFKA_OFFSET_BEGINNING, buf, sizeof(buf)),
            "earliest", "-2 prints as earliest");
        TAP_STR_EQ(
            group_admin_offset_str(RD_KAFKA_OFFSET_END, buf, sizeof(buf)),
            "latest", "-1 prints as latest");
        TAP_STR_EQ(group_admin_offset_str(0, buf, sizeof(buf)), "0",
                   "offset 0 is a number");
        TAP_STR_EQ(group_admin_offset_str(9007199254740993LL, buf, sizeof(buf)),
                   "9007199254740993", "a large offset prints in full");
        return TAP_DONE();
}
