/* ISO 8601 durations as the Azure rotation policy uses them ("P90D", "P1Y2M", "PT12H", "P2W"), to and
 * from seconds. Years count 365 days and months 30 days, as the service documents them; at most 100 years. */
#include <stdio.h>
#include <string.h>

#include "ownkey/util.h"

#define DAY 86400ll
#define MAX_DURATION (100 * 365 * DAY) /* longer is surely a mistake, and keeps format's output parseable */

ok_err ok_duration_parse(const char *text, int64_t *seconds)
{
    if (!text || text[0] != 'P' || !text[1])
        return ok_fail(OK_ERR_FORMAT, "duration must look like P90D or PT12H");
    int64_t total = 0;
    int in_time = 0, any = 0;
    const char *p = text + 1;
    const char *order_date = "YMWD", *order_time = "HMS";
    const char *last = NULL;
    while (*p) {
        if (*p == 'T') {
            if (in_time || !p[1])
                return ok_fail(OK_ERR_FORMAT, "misplaced T in duration \"%s\"", text);
            in_time = 1;
            last = NULL;
            p++;
            continue;
        }
        int64_t n = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits >= 12)
                return ok_fail(OK_ERR_LIMIT, "duration \"%s\" is too large", text);
            n = n * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (!digits || !*p)
            return ok_fail(OK_ERR_FORMAT, "malformed duration \"%s\"", text);
        const char *order = in_time ? order_time : order_date;
        const char *unit = strchr(order, *p);
        if (!unit || (last && unit <= last))
            return ok_fail(OK_ERR_FORMAT, "malformed duration \"%s\"", text);
        last = unit;
        int64_t scale;
        switch (in_time ? (*p == 'M' ? 'm' : *p) : *p) {
        case 'Y': scale = 365 * DAY; break;
        case 'M': scale = 30 * DAY; break;
        case 'W': scale = 7 * DAY; break;
        case 'D': scale = DAY; break;
        case 'H': scale = 3600; break;
        case 'm': scale = 60; break;
        default: scale = 1; break;
        }
        if (n > MAX_DURATION / scale || total + n * scale > MAX_DURATION)
            return ok_fail(OK_ERR_LIMIT, "duration \"%s\" is longer than 100 years", text);
        total += n * scale;
        any = 1;
        p++;
    }
    if (!any)
        return ok_fail(OK_ERR_FORMAT, "malformed duration \"%s\"", text);
    *seconds = total;
    return OK_OK;
}

void ok_duration_format(int64_t seconds, char *out, size_t len)
{
    if (seconds > 0 && seconds % DAY == 0)
        snprintf(out, len, "P%lldD", (long long)(seconds / DAY));
    else if (seconds > 0 && seconds % 3600 == 0)
        snprintf(out, len, "PT%lldH", (long long)(seconds / 3600));
    else
        snprintf(out, len, "PT%lldS", (long long)seconds);
}
