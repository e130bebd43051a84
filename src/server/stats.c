/* stats.c - see stats.h. */
#include "stats.h"

#include <string.h>

void skd_stats_sum(skd_stats *total, const skd_stats *w, int n)
{
    memset(total, 0, sizeof(*total));
    for (int i = 0; i < n; i++) {
#define SKD__SUM(name, desc) total->name += __atomic_load_n(&w[i].name, __ATOMIC_RELAXED);
        SKD_STATS_MAP(SKD__SUM)
#undef SKD__SUM
    }
}

void skd_stats_print(FILE *f, const skd_stats *s)
{
#define SKD__PRINT(name, desc) fprintf(f, "  %-20s %12llu  %s\n", #name, (unsigned long long)s->name, desc);
    SKD_STATS_MAP(SKD__PRINT)
#undef SKD__PRINT
    fflush(f);
}
