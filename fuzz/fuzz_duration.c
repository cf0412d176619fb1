/* libFuzzer target: the ISO 8601 duration parser used by rotation policies. Parses the input as text;
 * on success, formats the result and parses that again: the value must survive the round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char text[257];
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t seconds = 0, again = 0;
    if (ok_duration_parse(text, &seconds) != OK_OK)
        return 0;
    if (seconds < 0)
        abort();
    char formatted[64];
    ok_duration_format(seconds, formatted, sizeof formatted);
    if (seconds > 0 && (ok_duration_parse(formatted, &again) != OK_OK || again != seconds)) {
        fprintf(stderr, "fuzz_duration: \"%s\" -> %lld -> \"%s\" does not round-trip\n", text, (long long)seconds, formatted);
        abort();
    }
    return 0;
}
