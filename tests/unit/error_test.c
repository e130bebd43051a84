/* error_test.c - every error code has a distinct name and message. */
#include "stunkit/stunkit.h"
#include "test.h"

static void test_table(void)
{
    static const int codes[] = {
#define X(name, val, msg) val,
        STUNKIT_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] < 0);
        CHECK(strcmp(stunkit_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = i + 1; j < n; j++) {
            CHECK(codes[i] != codes[j]);
            CHECK(strcmp(stunkit_strerror(codes[i]), stunkit_strerror(codes[j])) != 0);
            CHECK(strcmp(stunkit_err_name(codes[i]), stunkit_err_name(codes[j])) != 0);
        }
    }
    CHECK_STR(stunkit_err_name(STUNKIT_ERR_TRUNCATED), "TRUNCATED");
    CHECK_STR(stunkit_strerror(0), "success");
    CHECK_STR(stunkit_strerror(-9999), "unknown error");
    CHECK_STR(stunkit_code_reason(420), "Unknown Attribute");
    CHECK_STR(stunkit_code_reason(438), "Stale Nonce");
    CHECK(stunkit_code_reason(299) == NULL);
}

int main(void)
{
    RUN(test_table);
    TEST_END();
}
